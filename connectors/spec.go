package connectors

import (
	"fmt"
	"unicode/utf8"
)

// ParamType is the type of an action parameter as a flow file writes it. The
// loader compiles each type its own way (see the flow reference).
type ParamType string

// Parameter types.
const (
	TypeTemplate   ParamType = "template"    // a string that may embed ${expr}
	TypeString     ParamType = "string"      // a fixed string, often one of Enum
	TypeInt        ParamType = "int"         // an integer (or a template)
	TypeBool       ParamType = "bool"        // true or false (or a template)
	TypeDuration   ParamType = "duration"    // 90s, 15m, 24h, 2d
	TypeAny        ParamType = "any"         // any value; strings in it are templates
	TypeTemplates  ParamType = "templates"   // a mapping of name → template
	TypeButtons    ParamType = "buttons"     // reply buttons: [{id, title}] or titles
	TypeList       ParamType = "list"        // a list message: {button, section, rows}
	TypeWATemplate ParamType = "wa-template" // a WhatsApp template: {name, language, params}
	TypeFile       ParamType = "file"        // a stored file (${event.data.file}) or an https URL
	TypeFiles      ParamType = "files"       // a list of files, or one ${expr} that is a file or a list of them
)

// Param describes one parameter of an action.
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	Enum     []string // the allowed values, when the set is closed
	Doc      string
	// MaxLen is the longest value the remote side accepts, in characters (0: no
	// limit); the loader checks literal values against it.
	MaxLen int
	// Example is a value the executor accepts; a test runs every action with its
	// examples in dry-run.
	Example any
}

// ActionSpec describes one outbound action: what a flow writes and what the
// executor performs. Each connector declares the specs of its actions beside its
// executor; the loader checks flows against them and the flow reference is
// generated from them.
type ActionSpec struct {
	Name string
	Doc  string
	// Shorthand is the parameter a scalar value stands for (`send: "text"`).
	Shorthand string
	Params    []Param
}

// Param returns the parameter called name.
func (a ActionSpec) Param(name string) (Param, bool) {
	for _, p := range a.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Describer is an Executor that describes the actions it performs (every
// connector fixit ships does). Its Kinds must be the names of its Actions.
type Describer interface {
	Actions() []ActionSpec
}

// KindsOf lists the names of specs, for an executor's Kinds.
func KindsOf(specs []ActionSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// Limits are what a channel accepts in one message: lengths are in characters,
// unless the name says bytes; 0 means the channel has no such limit.
type Limits struct {
	Text           int // a message that is only text
	Body           int // the text of a message with buttons or a list
	Header, Footer int
	Buttons        int // reply buttons in one message
	ButtonTitle    int
	ButtonID       int
	ButtonIDBytes  int // Telegram's callback_data is counted in bytes
	ListButton     int // the button that opens a list
	SectionTitle   int
	ListRows       int // rows over all sections
	RowTitle       int
	RowDescription int
	RowID          int
	RowIDBytes     int
}

// Channel is a channel "send" goes out on, with its limits.
type Channel struct {
	Name   string // "waba", "telegram"
	Title  string // "WhatsApp", "Telegram"
	Limits Limits
}

// Limited is a Sender that says what its channel accepts.
type Limited interface {
	Channel() string
	Describe() Channel
}

// SendSpec is the "send" action every Sender performs, on the dialog's channel.
// What each channel accepts is in its Limits.
var SendSpec = ActionSpec{Name: "send", Shorthand: "text", Doc: "Send a message on the dialog's channel (WhatsApp or Telegram).", Params: []Param{
	{Name: "text", Type: TypeTemplate, Doc: "Message text (the body of buttons and lists).", Example: "Здравствуйте!"},
	{Name: "buttons", Type: TypeButtons, Doc: "Reply buttons: a list of {id, title} or of titles.", Example: []any{map[string]any{"id": "yes", "title": "Да"}}},
	{Name: "list", Type: TypeList, Doc: "A list message: {button, section, rows: [{id, title, description}]}."},
	{Name: "header", Type: TypeTemplate, Doc: "Header text of buttons and lists.", Example: "Запись"},
	{Name: "footer", Type: TypeTemplate, Doc: "Footer text of buttons and lists.", Example: "fixit"},
	{Name: "template", Type: TypeWATemplate, Doc: "Send a WhatsApp template: {name, language, params}."},
	{Name: "fallback", Type: TypeWATemplate, Doc: "Template sent instead of a free-form message outside WhatsApp's 24-hour window."},
	{Name: "file", Type: TypeFile, Doc: "Send a file: a stored one (`${event.data.file}`) is uploaded, an https URL is sent as a link. An image, video or audio file goes as such, anything else as a document; `text` is its caption. A list of files (`${event.data.files}`) goes as one message per file, the text the first one's caption."},
	{Name: "filename", Type: TypeTemplate, Doc: "The name a document is shown with (default: the stored file's name)."},
}}

// TruncateChars cuts s to at most max characters, ending it with … when it was
// cut; it never splits a character. It reports whether it cut.
func TruncateChars(s string, max int) (string, bool) {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s, false
	}
	r := []rune(s)
	return string(r[:max-1]) + "…", true
}

// checkDescribed reports an executor whose Kinds and Actions disagree.
func checkDescribed(e Executor) error {
	d, ok := e.(Describer)
	if !ok {
		return nil
	}
	kinds := e.Kinds()
	specs := d.Actions()
	if len(kinds) != len(specs) {
		return fmt.Errorf("connectors: executor performs %v but describes %v", kinds, KindsOf(specs))
	}
	for i := range kinds {
		if kinds[i] != specs[i].Name {
			return fmt.Errorf("connectors: executor performs %v but describes %v", kinds, KindsOf(specs))
		}
	}
	return nil
}
