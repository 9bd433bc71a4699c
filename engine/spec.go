package engine

import "github.com/fixit-exchange/fixit/engine/dialog"

// This file is the one description of the flow language. The loader checks files
// against it, `fixit schema` generates the JSON Schema from it, and docs/flows.md is
// checked against it by a test.

// ValueType is the type of a key's value in a flow file.
type ValueType string

// Value types of the flow language.
const (
	TString     ValueType = "string"      // plain string
	TTemplate   ValueType = "template"    // string that may embed ${expr}
	TExpr       ValueType = "expr"        // expr-lang expression
	TGuard      ValueType = "guard"       // expr-lang expression that must be bool
	TInt        ValueType = "int"         // integer
	TBool       ValueType = "bool"        // true or false
	TDuration   ValueType = "duration"    // Go duration: 90s, 15m, 24h, 1h30m
	TState      ValueType = "state"       // name of a state of the same flow
	TEventTypes ValueType = "event-types" // one event type or a list of them
	TAny        ValueType = "any"         // any YAML value; strings inside are templates
	TTemplates  ValueType = "templates"   // mapping of string → template
	TButtons    ValueType = "buttons"     // list of {id, title} or of strings
	TList       ValueType = "list"        // {button, section, rows: [{id, title, description}]}
	TWATemplate ValueType = "wa-template" // {name, language, params: [template…]}
	TObject     ValueType = "object"      // a nested object described by Fields
	TFile       ValueType = "file"        // a stored file (${event.data.file}) or an https URL
	TFiles      ValueType = "files"       // a list of files, or one ${expr} that is a file or a list of them
)

// Field is one key of a mapping in a flow file.
type Field struct {
	Name     string
	Type     ValueType
	Required bool
	Enum     []string
	Doc      string
	// MaxLen is the longest literal value accepted, in characters (0: any).
	MaxLen int
}

// Object is a mapping with a fixed set of keys.
type Object struct {
	Name   string
	Doc    string
	Fields []Field
}

func (o Object) field(name string) (Field, bool) {
	for _, f := range o.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func (o Object) names() []string {
	out := make([]string, len(o.Fields))
	for i, f := range o.Fields {
		out[i] = f.Name
	}
	return out
}

// Final statuses a final state may give its dialog.
var finalStatuses = func() []string {
	out := make([]string, len(dialog.FinalStatuses))
	for i, s := range dialog.FinalStatuses {
		out[i] = string(s)
	}
	return out
}()

// FlowSpec is the top level of a flow file.
var FlowSpec = Object{Name: "flow", Doc: "A flow file: one state machine. Top-level keys starting with `x-` are ignored: a place for what YAML anchors name (`x-common: &common …`, then `<<: *common` in a state).", Fields: []Field{
	{Name: "flow", Type: TString, Required: true, Doc: "Unique flow name (letters, digits, underscores)."},
	{Name: "description", Type: TString, Doc: "What the flow is for; shown by the admin API and `fixit graph`."},
	{Name: "timezone", Type: TString, Doc: "IANA zone (e.g. Europe/Moscow) in which parse_time reads times written without a zone, such as 1C's 2026-05-10T00:00:00. Default: the server's FIXIT_TZ, else UTC."},
	{Name: "priority", Type: TInt, Doc: "When several flows may start on the same event, the highest priority wins, then the file name. Default 0."},
	{Name: "start", Type: TObject, Required: true, Doc: "Which events start a new dialog of this flow (see start)."},
	{Name: "initial", Type: TState, Required: true, Doc: "The state a new dialog enters."},
	{Name: "vars", Type: TAny, Doc: "Dialog variables with their default values (mapping name → value). Only declared variables may be read or set."},
	{Name: "states", Type: TObject, Required: true, Doc: "Mapping of state name → state (see state)."},
	{Name: "migrate", Type: TObject, Doc: "Move live dialogs of older versions of this flow to this version on reload: a mapping old state → new state; states not listed keep their name. Without `migrate`, running dialogs stay on the version they started on."},
}}

// StartSpec describes `start`.
var StartSpec = Object{Name: "start", Doc: "Which events start a new dialog.", Fields: []Field{
	{Name: "on", Type: TEventTypes, Required: true, Doc: "Event type(s) that may start a dialog, e.g. waba.message."},
	{Name: "when", Type: TGuard, Doc: "Optional guard: the dialog starts only when it is true."},
	{Name: "alongside", Type: TBool, Doc: "The flow runs beside the others instead of competing with them: an event is offered to it in addition to the ordinary routing (see \"One event, several flows\"). Its dialogs hold their correlation keys apart from other flows' dialogs. Default false."},
}}

// StateSpec describes one state.
var StateSpec = Object{Name: "state", Doc: "One state of the dialog.", Fields: []Field{
	{Name: "description", Type: TString, Doc: "What the dialog waits for here."},
	{Name: "enter", Type: TObject, Doc: "Actions run each time the state is entered (list of actions)."},
	{Name: "on", Type: TObject, Doc: "Mapping of event type → ordered list of branches; the first branch whose `when` holds is taken."},
	{Name: "always", Type: TObject, Doc: "Eventless branches, tried right after entering (after `enter`); the first that holds is taken."},
	{Name: "after", Type: TObject, Doc: "Timers started on entering the state and cancelled on leaving it: a mapping duration → state, or a list of branches with `in: <duration>`."},
	{Name: "ignore", Type: TEventTypes, Doc: "Event types this state deliberately ignores (recorded as ignored, not as unhandled)."},
	{Name: "final", Type: TBool, Doc: "The dialog ends on entering this state; its correlation keys are released."},
	{Name: "status", Type: TString, Enum: finalStatuses, Doc: "Status of a dialog that ends here: finished (default), abandoned or failed."},
}}

// BranchSpec describes one branch of a handler (and of `always`).
// Actions may also be written inline (`send: …`, `bind: …`) as keys of the branch.
var BranchSpec = Object{Name: "branch", Doc: "One guarded branch: when → set → actions → goto.", Fields: []Field{
	{Name: "when", Type: TGuard, Doc: "Guard expression (bool). Absent: always true."},
	{Name: "set", Type: TObject, Doc: "Mapping of variable → expression, evaluated in order; later ones see earlier results."},
	{Name: "do", Type: TObject, Doc: "List of actions, run in order after `set` (inline actions run before `do`)."},
	{Name: "goto", Type: TState, Doc: "Next state. Absent: stay in the state without re-entering it."},
}}

// TimerSpec describes one timer of `after` in its list form.
var TimerSpec = Object{Name: "timer", Doc: "A timer: a branch that runs when the dialog has stayed `in` long in the state.", Fields: append([]Field{
	{Name: "in", Type: TDuration, Required: true, Doc: "How long after entering the state the timer fires."},
}, BranchSpec.Fields...)}

// ActionSpec describes one action kind and its parameters.
type ActionSpec struct {
	Name string
	Doc  string
	// Shorthand is the parameter a scalar value stands for (`send: "text"` means {text: "text"}).
	Shorthand string
	// Local actions are applied by the interpreter itself; the others go to the outbox.
	Local  bool
	Params []Field
}

func (a ActionSpec) param(name string) (Field, bool) {
	return Object{Fields: a.Params}.field(name)
}

// LocalActions are the actions the interpreter applies itself, in the step that
// asks for them. The outbound actions come from the connectors (see Catalog).
var LocalActions = []ActionSpec{
	{Name: "bind", Shorthand: "key", Local: true, Doc: "Add a correlation key to the dialog, e.g. okdesk:issue:${event.data.id}.", Params: []Field{
		{Name: "key", Type: TTemplate, Required: true, Doc: "The key."},
	}},
	{Name: "log", Shorthand: "message", Local: true, Doc: "Write a line to the dialog's history and the server log.", Params: []Field{
		{Name: "message", Type: TTemplate, Required: true, Doc: "The message."},
		{Name: "level", Type: TString, Enum: []string{"debug", "info", "warn", "error"}, Doc: "Log level (default info)."},
	}},
	{Name: "handoff", Shorthand: "reason", Local: true, Doc: "Hand the dialog to a human: the bot falls silent until one of the `until` events arrives.", Params: []Field{
		{Name: "reason", Type: TTemplate, Doc: "Why; recorded in the history."},
		{Name: "until", Type: TEventTypes, Doc: "Event type(s) that hand the dialog back to the bot. Absent: only an operator can (`POST /api/v1/dialogs/{id}/handback`)."},
	}},
}

// EventTypes lists the event types a flow may name; each is documented.
// okdesk.* and onec.* types outside this list are accepted with a warning
// (Okdesk adds types; 1C events are defined by the integrator).
var EventTypes = []struct{ Name, Doc string }{
	{"waba.message", "A WhatsApp message of any kind (text, button/list reply, template button, media, location, contacts, reaction, unsupported)."},
	{"waba.status", "A WhatsApp delivery status: sent, delivered, read, failed."},
	{"waba.message_failed", "A message this dialog sent was not delivered (a failed receipt): data.error_code and data.error_title are Meta's, data.outbox_id and data.message_id name the send."},
	{"waba.error", "A WhatsApp error not tied to a message."},
	{"telegram.message", "A Telegram message or edited message."},
	{"telegram.callback", "A Telegram inline-button tap (callback_query)."},
	{"okdesk.new_ticket", "Okdesk: an issue was created."},
	{"okdesk.new_ticket_status", "Okdesk: an issue's status changed (data.new_status, data.old_status are codes)."},
	{"okdesk.new_comment", "Okdesk: a comment was added (data.comment_public, text = the comment)."},
	{"okdesk.new_assignee", "Okdesk: the assignee changed."},
	{"okdesk.update_issue_work_type", "Okdesk: the issue type changed."},
	{"okdesk.new_csat_rate", "Okdesk: the customer rated the issue."},
	{"okdesk.new_files", "Okdesk: files were attached."},
	{"okdesk.new_deadline", "Okdesk: the deadline changed."},
	{"okdesk.add_coexecutor", "Okdesk: a co-executor was added."},
	{"okdesk.remove_coexecutor", "Okdesk: a co-executor was removed."},
	{"okdesk.change_ticket_parameter", "Okdesk: additional issue parameters changed."},
	{"okdesk.ticket_deleted", "Okdesk: an issue was deleted."},
	{"okdesk.new_equipment", "Okdesk: equipment was created."},
	{"okdesk.change_equipment", "Okdesk: equipment changed."},
	{"okdesk.new_company", "Okdesk: a company was created."},
	{"okdesk.change_company", "Okdesk: a company changed."},
	{"okdesk.new_agreement", "Okdesk: an agreement was created."},
	{"okdesk.change_agreement", "Okdesk: an agreement changed."},
	{"okdesk.new_service_aim", "Okdesk: a service object was created."},
	{"okdesk.change_service_aim", "Okdesk: a service object changed."},
	{"onec.payment", "1C: a payment notification (data.status: paid, partially_paid, unpaid, cancelled)."},
	{"timer", "A state's `after` timer fired (handled by `after`, not by `on`)."},
	{"action.done", "An outbound action succeeded; data holds its result and data.action its kind."},
	{"action.failed", "An outbound action failed for good; data.error holds {code, message, status}."},
}

func eventTypeNames() []string {
	out := make([]string, len(EventTypes))
	for i, e := range EventTypes {
		out[i] = e.Name
	}
	return out
}
