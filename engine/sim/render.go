package sim

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// describeEvent renders an event on one line.
func describeEvent(ev *event.Event) string {
	d := ev.Data
	s := ev.Type
	switch ev.Type {
	case event.TypeWABAMessage:
		s += fmt.Sprintf(" %s from %s", str(d["kind"]), ev.Contact.ID)
		if id := str(d["reply_id"]); id != "" {
			s += " reply_id=" + quote(id)
		}
		if ev.Text != "" {
			s += " " + quote(ev.Text)
		}
	case event.TypeTelegramMessage, event.TypeTelegramCallback:
		s += fmt.Sprintf(" from chat %s %s", ev.Contact.ID, quote(ev.Text))
	case event.TypeTimer:
		s += fmt.Sprintf(" %s/%s", str(d["state"]), str(d["timer"]))
	case event.TypeActionDone:
		s += fmt.Sprintf(" %s #%s %s", str(d["action"]), str(d["action_id"]), show(resultOf(d)))
	case event.TypeActionFailed:
		e, _ := d["error"].(map[string]any)
		s += fmt.Sprintf(" %s #%s %s", str(d["action"]), str(d["action_id"]), failureText(str(e["code"]), toInt(e["status"]), str(e["message"])))
	case "okdesk.new_ticket_status":
		s += fmt.Sprintf(" issue %s %s → %s", str(d["issue_id"]), orDash(str(d["old_status"])), str(d["new_status"]))
	case "okdesk.new_comment":
		vis := "private"
		if b, _ := d["comment_public"].(bool); b {
			vis = "public"
		}
		s += fmt.Sprintf(" issue %s %s by %s %s", str(d["issue_id"]), vis, str(d["author_type"]), quote(ev.Text))
	case event.TypeOneCPayment:
		s += " " + str(d["status"])
		for _, k := range []string{"okdesk_issue_id", "phone", "invoice_id"} {
			if v := str(d[k]); v != "" {
				s += " " + k + "=" + v
			}
		}
	default:
		if ev.Text != "" {
			s += " " + quote(ev.Text)
		}
		if len(d) > 0 {
			s += " " + show(d)
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func toInt(v any) int {
	f, _ := toFloat(v)
	return int(f)
}

// resultOf is an action result event's data without the routing fields.
func resultOf(d map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range d {
		switch k {
		case "action", "action_id", "dialog_id":
		default:
			out[k] = v
		}
	}
	return out
}

func failureText(code string, status int, msg string) string {
	s := "failed: " + code
	if status != 0 {
		s += fmt.Sprintf(" (http %d)", status)
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

// describeMessage renders what the customer got.
func describeMessage(m *Message) string {
	var b strings.Builder
	if m.Template != nil {
		fmt.Fprintf(&b, "template %s", m.Template.Name)
		if m.Template.Language != "" {
			b.WriteString("/" + m.Template.Language)
		}
		params := make([]any, len(m.Template.Params))
		for i, p := range m.Template.Params {
			params[i] = p
		}
		b.WriteString(" " + show(params))
		if m.Via == "fallback_template" {
			fmt.Fprintf(&b, " (fallback: the window was closed for %s)", quote(m.Text))
		}
		return b.String()
	}
	if m.Header != "" {
		b.WriteString("[" + m.Header + "] ")
	}
	b.WriteString(quote(m.Text))
	if len(m.Buttons) > 0 {
		titles := make([]string, len(m.Buttons))
		for i, c := range m.Buttons {
			titles[i] = c.Title
		}
		b.WriteString(" buttons: " + strings.Join(titles, " | "))
	}
	if len(m.Rows) > 0 {
		titles := make([]string, len(m.Rows))
		for i, c := range m.Rows {
			titles[i] = c.Title
		}
		fmt.Fprintf(&b, " list %s: %s", quote(m.ListButton), strings.Join(titles, " | "))
	}
	return b.String()
}

// describeAction renders an action and its outcome on one line.
func describeAction(a *Action) string {
	if a.Pending && !a.answered() {
		return fmt.Sprintf("%s #%d %s → pending (its result comes with a complete step)", a.Kind, a.ID, show(a.Params))
	}
	var s string
	if a.Kind == "send" && a.Message != nil {
		s = fmt.Sprintf("send #%d %s", a.ID, describeMessage(a.Message))
		if a.Failure == nil {
			return s
		}
	} else {
		s = fmt.Sprintf("%s #%d %s", a.Kind, a.ID, show(a.Params))
	}
	if a.Failure != nil {
		return s + " → " + failureText(a.Failure.Code, a.Failure.Status, a.Failure.Message)
	}
	return s + " → " + show(a.Result)
}

// describeProcessed renders where an event went and what it did.
func describeProcessed(p *Processed) string {
	s := describeEvent(&p.Event)
	switch p.Outcome {
	case OutcomeUnrouted:
		return s + " → unrouted (no dialog, no flow starts on it)"
	case OutcomeDuplicate:
		return s + " → duplicate, dropped"
	}
	s += fmt.Sprintf(" → dialog %d", p.Dialog)
	if p.Started {
		s += " (new, flow " + p.Flow + ")"
	}
	switch {
	case p.Outcome == OutcomeFailed:
		return s + ": runtime error: " + p.Err.Error()
	case p.From != p.To && p.From == "":
		s += ": " + p.To
	case p.From != p.To:
		s += ": " + p.From + " → " + p.To
	default:
		s += ": stays in " + p.To
	}
	if p.Outcome != OutcomeHandled {
		s += " [" + string(p.Outcome) + "]"
	}
	if p.Status != "" && p.Status != "active" {
		s += " (" + p.Status + ")"
	}
	return s
}

// writeReport prints a report as a transcript: each event, then what it did.
func writeReport(w io.Writer, rep *Report, indent string) {
	if len(rep.Events) == 0 {
		fmt.Fprintf(w, "%s(nothing happened)\n", indent)
	}
	for _, p := range rep.Events {
		fmt.Fprintf(w, "%s%s\n", indent, describeProcessed(p))
		for _, n := range p.Notes {
			fmt.Fprintf(w, "%s    note: %s\n", indent, n)
		}
		if a := p.Completed; a != nil && a.Kind == "send" && a.Message != nil {
			fmt.Fprintf(w, "%s    completes %s\n", indent, describeAction(a))
		}
		for _, l := range p.Logs {
			fmt.Fprintf(w, "%s    log %s\n", indent, quote(l))
		}
		for _, a := range p.Actions {
			fmt.Fprintf(w, "%s    %s\n", indent, describeAction(a))
		}
	}
}

// varsText renders a dialog's variables in its flow's declaration order.
func varsText(d *store.Dialog, f *engine.Flow) string {
	var names []string
	if f != nil {
		names = f.VarNames
	}
	if len(names) == 0 {
		for k := range d.Vars {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, k+"="+show(d.Vars[k]))
	}
	return strings.Join(parts, " ")
}
