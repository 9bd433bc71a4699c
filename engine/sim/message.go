package sim

import (
	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
)

// Message is a send as the customer sees it: read back from the request the
// channel's connector built for it.
type Message struct {
	Channel    string
	To         string
	Text       string
	Header     string
	Footer     string
	Buttons    []Choice
	ListButton string
	Rows       []Choice
	Template   *Template
	Via        string // text, buttons, list, template, fallback_template, media_image, photo, document, …
	// From is the WhatsApp business number (phone_number_id) it left from; empty
	// when the dialog has none (the server's first number).
	From string
	// File is the name of the file the message carries (a stored file's name, or
	// the last part of a link); Text is then its caption.
	File string
}

// Choices returns the buttons or list rows the customer may tap.
func (m *Message) Choices() []Choice {
	if len(m.Buttons) > 0 {
		return m.Buttons
	}
	return m.Rows
}

// Choice is one reply button or list row.
type Choice struct {
	ID, Title, Description string
}

// Template is a WhatsApp template message.
type Template struct {
	Name, Language string
	Params         []string
}

// messageOf reads the message a send's dry-run request carries: a Graph API
// message (WhatsApp) or a sendMessage body (Telegram). params are the action's,
// for the text a fallback template replaced.
func messageOf(channel string, params, data map[string]any) *Message {
	p := obj(data["payload"])
	m := &Message{Channel: channel, Via: str(data["via"]), From: str(data["from"]), File: fileName(params["file"])}
	if m.File != "" {
		m.Text = str(params["text"])
		if p != nil {
			m.To = str(p["to"])
			if channel == "telegram" {
				m.To = str(p["chat_id"])
			}
		}
		return m
	}
	if p == nil { // the client refused it: what the flow asked for
		m.Text = str(params["text"])
		return m
	}
	if channel == "telegram" {
		m.To, m.Text = str(p["chat_id"]), str(p["text"])
		for _, row := range list(obj(p["reply_markup"])["inline_keyboard"]) {
			for _, b := range list(row) {
				bm := obj(b)
				m.Buttons = append(m.Buttons, Choice{ID: str(bm["callback_data"]), Title: str(bm["text"])})
			}
		}
		return m
	}
	m.To = str(p["to"])
	switch str(p["type"]) {
	case "text":
		m.Text = str(obj(p["text"])["body"])
	case "interactive":
		in := obj(p["interactive"])
		m.Text, m.Header, m.Footer = str(obj(in["body"])["text"]), str(obj(in["header"])["text"]), str(obj(in["footer"])["text"])
		action := obj(in["action"])
		for _, b := range list(action["buttons"]) {
			r := obj(obj(b)["reply"])
			m.Buttons = append(m.Buttons, Choice{ID: str(r["id"]), Title: str(r["title"])})
		}
		m.ListButton = str(action["button"])
		for _, sec := range list(action["sections"]) {
			for _, r := range list(obj(sec)["rows"]) {
				rm := obj(r)
				m.Rows = append(m.Rows, Choice{ID: str(rm["id"]), Title: str(rm["title"]), Description: str(rm["description"])})
			}
		}
	case "template":
		t := obj(p["template"])
		m.Template = &Template{Name: str(t["name"]), Language: str(obj(t["language"])["code"])}
		for _, c := range list(t["components"]) {
			for _, x := range list(obj(c)["parameters"]) {
				m.Template.Params = append(m.Template.Params, str(obj(x)["text"]))
			}
		}
		if m.Via == waba.ViaFallbackTemplate {
			m.Text = str(params["text"]) // what the closed window kept from the customer
		}
	}
	return m
}

var obj, list = connectors.Object, connectors.List

func str(v any) string {
	if v == nil {
		return ""
	}
	return engine.Stringify(v)
}
