package waba

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/connectors"
)

// WhatsApp limits on what a business may send (Cloud API reference; sizes in
// characters). They are defined here only; the loader reads them through the
// registry (Limits).
const (
	MaxTextLen        = 4096 // text message body
	MaxButtons        = 3    // reply buttons per message
	MaxButtonTitleLen = 20   // reply button title
	MaxListRows       = 10   // rows of a list message, all sections together
	maxInteractiveLen = 1024 // body of an interactive message
	maxHeaderLen      = 60   // interactive header and footer
	maxListButtonLen  = 20   // the button that opens a list
	maxRowTitleLen    = 24   // also a section's title
	maxRowDescLen     = 72
	maxButtonIDLen    = 256
	maxRowIDLen       = 200
)

// Limits is what WhatsApp accepts in one message.
var Limits = connectors.Limits{Text: MaxTextLen, Body: maxInteractiveLen, Header: maxHeaderLen, Footer: maxHeaderLen,
	Buttons: MaxButtons, ButtonTitle: MaxButtonTitleLen, ButtonID: maxButtonIDLen, ListButton: maxListButtonLen,
	SectionTitle: maxRowTitleLen, ListRows: MaxListRows, RowTitle: maxRowTitleLen, RowDescription: maxRowDescLen, RowID: maxRowIDLen}

// Window is WhatsApp's customer-service window: free-form messages may be sent only
// this long after the contact's last inbound message.
const Window = 24 * time.Hour

// Via values: how a send was delivered, reported in Result.Data["via"].
const (
	ViaText             = "text"
	ViaButtons          = "buttons"
	ViaList             = "list"
	ViaTemplate         = "template"
	ViaFallbackTemplate = "fallback_template"
)

// The request bodies of POST /{phone-number-id}/messages, in Cloud API field names.
type (
	outMessage struct {
		MessagingProduct string          `json:"messaging_product"`
		RecipientType    string          `json:"recipient_type,omitempty"`
		To               string          `json:"to,omitempty"`
		Type             string          `json:"type,omitempty"`
		Text             *outText        `json:"text,omitempty"`
		Interactive      *outInteractive `json:"interactive,omitempty"`
		Template         *outTemplate    `json:"template,omitempty"`
		Image            *outMedia       `json:"image,omitempty"`
		Video            *outMedia       `json:"video,omitempty"`
		Audio            *outMedia       `json:"audio,omitempty"`
		Document         *outMedia       `json:"document,omitempty"`
		Status           string          `json:"status,omitempty"`     // mark as read
		MessageID        string          `json:"message_id,omitempty"` // mark as read
	}
	outText struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	}
	outInteractive struct {
		Type   string     `json:"type"`
		Header *outHeader `json:"header,omitempty"`
		Body   outBody    `json:"body"`
		Footer *outBody   `json:"footer,omitempty"`
		Action outAction  `json:"action"`
	}
	outHeader struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	outBody struct {
		Text string `json:"text"`
	}
	outAction struct {
		Button   string       `json:"button,omitempty"`
		Buttons  []outButton  `json:"buttons,omitempty"`
		Sections []outSection `json:"sections,omitempty"`
	}
	outButton struct {
		Type  string   `json:"type"`
		Reply outReply `json:"reply"`
	}
	outReply struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	outSection struct {
		Title string   `json:"title,omitempty"`
		Rows  []outRow `json:"rows"`
	}
	outRow struct {
		ID          string `json:"id"`
		Title       string `json:"title"`
		Description string `json:"description,omitempty"`
	}
	outTemplate struct {
		Name       string         `json:"name"`
		Language   outLanguage    `json:"language"`
		Components []outComponent `json:"components,omitempty"`
	}
	outLanguage struct {
		Code string `json:"code"`
	}
	outComponent struct {
		Type       string     `json:"type"`
		Parameters []outParam `json:"parameters"`
	}
	outParam struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

// cuts records the values cut to WhatsApp's limits while a message is built: a
// text a template made too long goes out shortened rather than not at all, and
// the cut is logged.
type cuts []string

// fit returns s cut to hi characters (noting the cut); a required s must not be
// empty.
func (c *cuts) fit(name, s string, required bool, hi int) (string, error) {
	if required && s == "" {
		return "", badParams(name + " is required")
	}
	out, cut := connectors.TruncateChars(s, hi)
	if cut {
		*c = append(*c, fmt.Sprintf("%s: %d characters, cut to %d", name, utf8.RuneCountInString(s), hi))
	}
	return out, nil
}

// buildSend turns the params of a "send" action into the message to post and how it
// goes ("via"), and says what was cut to fit. It validates everything first, then
// applies the 24-hour window: a free-form message outside it becomes the fallback
// template or a window_closed error.
func buildSend(req connectors.Request, now time.Time) (*outMessage, string, cuts, error) {
	to := firstNonEmpty(req.Dialog.ContactID, req.Dialog.Phone)
	if to == "" {
		return nil, "", nil, badParams("the dialog has no WhatsApp contact to send to")
	}
	p := req.Params
	if t := p["template"]; t != nil {
		tpl, err := buildTemplate("template", t)
		if err != nil {
			return nil, "", nil, err
		}
		return newMessage(to, "template", func(m *outMessage) { m.Template = tpl }), ViaTemplate, nil, nil
	}
	var c cuts
	msg, via, err := buildFreeForm(to, p, &c)
	if err != nil {
		return nil, "", nil, err
	}
	var fallback *outTemplate
	if f := p["fallback"]; f != nil {
		if fallback, err = buildTemplate("fallback", f); err != nil {
			return nil, "", nil, err
		}
	}
	last := req.LastInboundAt
	if !last.IsZero() && now.Sub(last) < Window {
		return msg, via, c, nil
	}
	if fallback != nil {
		return newMessage(to, "template", func(m *outMessage) { m.Template = fallback }), ViaFallbackTemplate, nil, nil
	}
	why := "no inbound message from the contact is known"
	if !last.IsZero() {
		why = "the last inbound message was at " + last.UTC().Format(time.RFC3339)
	}
	return nil, "", nil, &connectors.Error{Connector: "waba", Code: connectors.CodeWindowClosed, APICode: 131047,
		Message: "24-hour customer service window is closed (" + why + "): send a template or give a fallback"}
}

func buildFreeForm(to string, p map[string]any, c *cuts) (*outMessage, string, error) {
	if p["file"] != nil {
		return buildMedia(to, p, c)
	}
	text := paramString(p["text"])
	hasButtons, hasList := p["buttons"] != nil, p["list"] != nil
	switch {
	case hasButtons && hasList:
		return nil, "", badParams("buttons and list cannot be sent in one message")
	case !hasButtons && !hasList:
		text, err := c.fit("text", text, true, MaxTextLen)
		if err != nil {
			return nil, "", err
		}
		return newMessage(to, "text", func(m *outMessage) { m.Text = &outText{Body: text} }), ViaText, nil
	}

	text, err := c.fit("text", text, true, maxInteractiveLen)
	if err != nil {
		return nil, "", err
	}
	in := &outInteractive{Body: outBody{Text: text}}
	if h := paramString(p["header"]); h != "" {
		h, _ = c.fit("header", h, false, maxHeaderLen)
		in.Header = &outHeader{Type: "text", Text: h}
	}
	if f := paramString(p["footer"]); f != "" {
		f, _ = c.fit("footer", f, false, maxHeaderLen)
		in.Footer = &outBody{Text: f}
	}
	via := ViaButtons
	if hasButtons {
		in.Type = "button"
		in.Action.Buttons, err = buildButtons(p["buttons"], c)
	} else {
		via = ViaList
		in.Type = "list"
		in.Action.Button, in.Action.Sections, err = buildList(p["list"], c)
	}
	if err != nil {
		return nil, "", err
	}
	return newMessage(to, "interactive", func(m *outMessage) { m.Interactive = in }), via, nil
}

func buildButtons(v any, c *cuts) ([]outButton, error) {
	items := paramList(v)
	if len(items) == 0 || len(items) > MaxButtons {
		return nil, badParams(fmt.Sprintf("buttons: give 1 to %d buttons, got %d", MaxButtons, len(items)))
	}
	out := make([]outButton, 0, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		id, title, _ := choice(it)
		name := fmt.Sprintf("buttons[%d]", i)
		title, err := c.fit(name+".title", title, true, MaxButtonTitleLen)
		if err != nil {
			return nil, err
		}
		if err := checkLen(name+".id", id, true, maxButtonIDLen); err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, badParams(fmt.Sprintf("%s.id: %q is used twice", name, id))
		}
		seen[id] = true
		out = append(out, outButton{Type: "reply", Reply: outReply{ID: id, Title: title}})
	}
	return out, nil
}

func buildList(v any, c *cuts) (string, []outSection, error) {
	l := paramMap(v)
	if l == nil {
		return "", nil, badParams("list: want an object with button and rows")
	}
	button, err := c.fit("list.button", paramString(l["button"]), true, maxListButtonLen)
	if err != nil {
		return "", nil, err
	}
	section, _ := c.fit("list.section", paramString(l["section"]), false, maxRowTitleLen)
	items := paramList(l["rows"])
	if len(items) == 0 || len(items) > MaxListRows {
		return "", nil, badParams(fmt.Sprintf("list.rows: give 1 to %d rows, got %d", MaxListRows, len(items)))
	}
	rows := make([]outRow, 0, len(items))
	for i, it := range items {
		id, title, desc := choice(it)
		name := fmt.Sprintf("list.rows[%d]", i)
		title, err := c.fit(name+".title", title, true, maxRowTitleLen)
		if err != nil {
			return "", nil, err
		}
		desc, _ = c.fit(name+".description", desc, false, maxRowDescLen)
		// An id is matched against the reply: it is never cut.
		if err := checkLen(name+".id", id, true, maxRowIDLen); err != nil {
			return "", nil, err
		}
		rows = append(rows, outRow{ID: id, Title: title, Description: desc})
	}
	return button, []outSection{{Title: section, Rows: rows}}, nil
}

// buildTemplate reads {name, language, params} (language may also be {code}).
func buildTemplate(name string, v any) (*outTemplate, error) {
	t := paramMap(v)
	if t == nil {
		return nil, badParams(name + ": want an object with name, language and params")
	}
	tpl := &outTemplate{Name: paramString(t["name"]), Language: outLanguage{Code: paramString(t["language"])}}
	if lang := paramMap(t["language"]); lang != nil {
		tpl.Language.Code = paramString(lang["code"])
	}
	if tpl.Name == "" {
		return nil, badParams(name + ".name is required")
	}
	if tpl.Language.Code == "" {
		return nil, badParams(name + ".language is required")
	}
	if params := paramList(t["params"]); len(params) > 0 {
		body := outComponent{Type: "body", Parameters: make([]outParam, 0, len(params))}
		for _, x := range params {
			body.Parameters = append(body.Parameters, outParam{Type: "text", Text: paramString(x)})
		}
		tpl.Components = []outComponent{body}
	}
	return tpl, nil
}

func newMessage(to, typ string, set func(*outMessage)) *outMessage {
	m := &outMessage{MessagingProduct: "whatsapp", RecipientType: "individual", To: to, Type: typ}
	set(m)
	return m
}

// choice reads a button or list row: {id, title, description}, or a bare string that
// serves as both id and title. A missing id defaults to the title.
func choice(v any) (id, title, desc string) {
	if m := paramMap(v); m != nil {
		title = paramString(m["title"])
		return firstNonEmpty(paramString(m["id"]), title), title, paramString(m["description"])
	}
	s := paramString(v)
	return s, s, ""
}

// checkLen checks a length in characters (runes), as WhatsApp counts them.
func checkLen(name, s string, required bool, hi int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0 && required:
		return badParams(name + " is required")
	case n > hi:
		return badParams(fmt.Sprintf("%s: at most %d characters, got %d", name, hi, n))
	}
	return nil
}

func badParams(msg string) *connectors.Error {
	return &connectors.Error{Connector: "waba", Code: connectors.CodeBadParams, Message: msg}
}

// paramString, paramList and paramMap read evaluated action params leniently: ids
// may arrive as strings or numbers.
func paramString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func paramList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case []map[string]any:
		out := make([]any, len(x))
		for i, m := range x {
			out[i] = m
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return nil
}

func paramMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
