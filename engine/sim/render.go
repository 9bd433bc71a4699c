package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// DescribeEvent renders an event on one line.
func DescribeEvent(ev *event.Event) string {
	d := ev.Data
	s := ev.Type
	switch ev.Type {
	case event.TypeWABAMessage:
		s += fmt.Sprintf(" %s from %s", str(d["kind"]), ev.Contact.ID)
		if id := str(d["reply_id"]); id != "" {
			s += " reply_id=" + Quote(id)
		}
		if ev.Text != "" {
			s += " " + Quote(ev.Text)
		}
	case event.TypeTelegramMessage, event.TypeTelegramCallback:
		s += fmt.Sprintf(" from chat %s %s", ev.Contact.ID, Quote(ev.Text))
	case event.TypeTimer:
		s += fmt.Sprintf(" %s/%s", str(d["state"]), str(d["timer"]))
	case event.TypeActionDone:
		s += fmt.Sprintf(" %s #%s %s", str(d["action"]), str(d["action_id"]), Show(resultOf(d)))
	case event.TypeActionFailed:
		e, _ := d["error"].(map[string]any)
		s += fmt.Sprintf(" %s #%s %s", str(d["action"]), str(d["action_id"]), FailureText(str(e["code"]), toInt(e["status"]), str(e["message"])))
	case "okdesk.new_ticket_status":
		s += fmt.Sprintf(" issue %s %s → %s", str(d["issue_id"]), orDash(str(d["old_status"])), str(d["new_status"]))
	case "okdesk.new_comment":
		vis := "private"
		if b, _ := d["comment_public"].(bool); b {
			vis = "public"
		}
		s += fmt.Sprintf(" issue %s %s by %s %s", str(d["issue_id"]), vis, str(d["author_type"]), Quote(ev.Text))
	case event.TypeOneCPayment:
		s += " " + str(d["status"])
		for _, k := range []string{"okdesk_issue_id", "phone", "invoice_id"} {
			if v := str(d[k]); v != "" {
				s += " " + k + "=" + v
			}
		}
	default:
		if ev.Text != "" {
			s += " " + Quote(ev.Text)
		}
		if len(d) > 0 {
			s += " " + Show(d)
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
	f, _ := Number(v)
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

func FailureText(code string, status int, msg string) string {
	s := "failed: " + code
	if status != 0 {
		s += fmt.Sprintf(" (http %d)", status)
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

// DescribeMessage renders what the customer got.
func DescribeMessage(m *Message) string {
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
		b.WriteString(" " + Show(params))
		if m.Via == "fallback_template" {
			fmt.Fprintf(&b, " (fallback: the window was closed for %s)", Quote(m.Text))
		}
		return b.String()
	}
	if m.File != "" {
		b.WriteString("file " + Quote(m.File))
		if m.Text != "" {
			b.WriteString(" caption " + Quote(m.Text))
		}
		return b.String()
	}
	if m.Header != "" {
		b.WriteString("[" + m.Header + "] ")
	}
	b.WriteString(Quote(m.Text))
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
		fmt.Fprintf(&b, " list %s: %s", Quote(m.ListButton), strings.Join(titles, " | "))
	}
	return b.String()
}

// DescribeAction renders an action and its outcome on one line.
func DescribeAction(a *Action) string {
	if a.Pending && !a.Answered() {
		return fmt.Sprintf("%s #%d %s → pending (its result comes with a complete step)", a.Kind, a.ID, Show(a.Params))
	}
	var s string
	if a.Kind == "send" && a.Message != nil {
		s = fmt.Sprintf("send #%d %s", a.ID, DescribeMessage(a.Message))
		if a.Failure == nil {
			return s
		}
	} else {
		s = fmt.Sprintf("%s #%d %s", a.Kind, a.ID, Show(a.Params))
	}
	if a.Failure != nil {
		return s + " → " + FailureText(a.Failure.Code, a.Failure.Status, a.Failure.Message)
	}
	return s + " → " + Show(a.Result)
}

// DescribeProcessed renders where an event went and what it did.
func DescribeProcessed(p *Processed) string {
	s := DescribeEvent(&p.Event)
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

// WriteReport prints a report as a transcript: each event, then what it did.
func WriteReport(w io.Writer, rep *Report, indent string) {
	if len(rep.Events) == 0 {
		fmt.Fprintf(w, "%s(nothing happened)\n", indent)
	}
	for _, p := range rep.Events {
		fmt.Fprintf(w, "%s%s\n", indent, DescribeProcessed(p))
		for _, n := range p.Notes {
			fmt.Fprintf(w, "%s    note: %s\n", indent, n)
		}
		if a := p.Completed; a != nil && a.Kind == "send" && a.Message != nil {
			fmt.Fprintf(w, "%s    completes %s\n", indent, DescribeAction(a))
		}
		for _, l := range p.Logs {
			fmt.Fprintf(w, "%s    log %s\n", indent, Quote(l))
		}
		for _, a := range p.Actions {
			fmt.Fprintf(w, "%s    %s\n", indent, DescribeAction(a))
		}
	}
}

// VarsText renders a dialog's variables in its flow's declaration order.
func VarsText(d *store.Dialog, f *engine.Flow) string {
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
		parts = append(parts, k+"="+Show(d.Vars[k]))
	}
	return strings.Join(parts, " ")
}

// Number reads a JSON number (or a numeric text) as a float.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// Show renders a value compactly and deterministically: JSON with sorted keys,
// strings quoted, and non-ASCII text left readable.
func Show(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + Show(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Show(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return Quote(x)
	case nil:
		return "null"
	}
	if f, ok := Number(v); ok {
		b, _ := json.Marshal(f)
		return string(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Quote is strconv.Quote that keeps printable non-ASCII text (Cyrillic) as is.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
