package replay

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// Scenario writes a recorded conversation as a scenario file that `fixit test`
// runs: the inbound events as steps at their times (the clock advanced between
// them, so timers fire where they fired), the recorded outcome of each action as a
// one-shot mock before the step that asked for it, and after each step the state
// and status the dialog reached. Unless keepPII, personal data is masked: the
// customer's phone and name are replaced, and free text longer than three
// characters keeps its shape (letters, case, spaces, punctuation) but not its
// letters and digits; short answers ("1", "да") and button choices are kept, since
// a flow's branches often depend on them. Messages the bot sent are expected only
// with keepPII (they may quote what was masked).
func Scenario(rec Recording, keepPII bool) (string, error) {
	if len(rec.Events) == 0 {
		return "", fmt.Errorf("dialog %d: nothing was recorded", rec.Dialog.ID)
	}
	m := masker{keep: keepPII, names: map[string]string{}, phones: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "# Dialog %d of flow %s, as recorded", rec.Dialog.ID, rec.Dialog.Flow)
	if !keepPII {
		b.WriteString(" (personal data masked)")
	}
	fmt.Fprintf(&b, ". Made by `fixit replay scenario %d`.\n", rec.Dialog.ID)
	start := rec.Events[0].ReceivedAt
	fmt.Fprintf(&b, "start: %s\n", start.UTC().Format(time.RFC3339))
	for _, e := range rec.Events {
		if c := e.Event.Contact; c.Channel == event.SourceWABA && c.ID != "" {
			fmt.Fprintf(&b, "contact: { phone: %s, name: %s }\n", q("+"+m.phone(c.ID)), q(m.name(c.Name)))
			break
		}
		if c := e.Event.Contact; c.Channel == event.SourceTelegram && c.ID != "" {
			fmt.Fprintf(&b, "telegram: { chat_id: %s, name: %s }\n", q(m.chat(c.ID)), q(m.name(c.Name)))
			break
		}
	}
	fmt.Fprintf(&b, "scenarios:\n  - name: %s\n    steps:\n", q(fmt.Sprintf("dialog %d as recorded", rec.Dialog.ID)))

	// The history, by event: what each event led to, and the outcomes of actions.
	byEvent := map[int64][]Line{}
	for _, l := range rec.History {
		byEvent[l.EventSeq] = append(byEvent[l.EventSeq], l)
	}
	events := processingOrder(rec)
	// results: each action's result events, in order (more than one: an operator
	// retried it).
	results := map[int64][]*event.Event{}
	for i := range events {
		ev := &events[i].Event
		if id, _, ok := event.ActionOf(ev); ok {
			results[id] = append(results[id], ev)
		}
	}
	answered := map[int64]int{} // results of each action met so far
	nextAction := 0
	clock := start
	state, status := "", dialog.Active
	var sent []string
	type stepText struct {
		mocks []string
		lines []string
	}
	var steps []stepText
	flush := func() {
		if len(steps) == 0 {
			return
		}
		s := &steps[len(steps)-1]
		exp := []string{"state: " + q(state), "status: " + string(status)}
		if keepPII {
			list := make([]string, len(sent))
			for i, t := range sent {
				list[i] = q(t)
			}
			exp = append(exp, "sent: ["+strings.Join(list, ", ")+"]")
		}
		s.lines = append(s.lines, "        expect: { "+strings.Join(exp, ", ")+" }")
		sent = nil
	}
	for _, e := range events {
		ev := e.Event
		at := e.ReceivedAt
		if ev.Type == event.TypeTimer {
			at = ev.At
		}
		if id, kind, ok := event.ActionOf(&ev); ok {
			if answered[id]++; answered[id] > 1 {
				// An operator's retry: its outcome as a mock, then the retry.
				flush()
				st := stepText{lines: []string{"      - retry: " + q(kind)}}
				if mock := m.mock(Action{ID: id, Kind: kind}, &ev); mock != "" {
					st.mocks = append(st.mocks, mock)
				}
				steps = append(steps, st)
			}
		}
		if ev.Source != event.SourceAction {
			if gap := at.Sub(clock).Truncate(time.Second); gap > 0 || ev.Type == event.TypeTimer {
				if gap > 0 {
					flush()
					steps = append(steps, stepText{lines: []string{"      - advance: " + gap.String()}})
					clock = clock.Add(gap)
				}
			}
			if ev.Type != event.TypeTimer {
				line, err := m.step(&ev)
				if err != nil {
					return "", fmt.Errorf("event %d: %w", e.Seq, err)
				}
				flush()
				steps = append(steps, stepText{lines: []string{"      - " + line}})
			}
		}
		for _, l := range byEvent[e.Seq] {
			switch l.Kind {
			case dialog.HistTransition:
				state = l.To
			case dialog.HistEnd:
				status = dialog.Status(fmt.Sprint(l.Detail["status"]))
			case dialog.HistHandoff:
				if l.Detail["end"] == true {
					status = dialog.Active
				} else if _, held := l.Detail["reason"]; !held || l.Detail["reason"] != "dialog is with a human; event kept in history" {
					status = dialog.Handoff
				}
			case dialog.HistAction:
				if nextAction >= len(rec.Actions) || len(steps) == 0 {
					continue
				}
				a := rec.Actions[nextAction]
				nextAction++
				var first *event.Event
				if rs := results[a.ID]; len(rs) > 0 {
					first = rs[0]
				}
				if mock := m.mock(a, first); mock != "" {
					s := &steps[len(steps)-1]
					s.mocks = append(s.mocks, mock)
				}
				if a.Kind == "send" && (a.Status == "done" || a.Status == "") {
					var p map[string]any
					_ = json.Unmarshal(a.Params, &p)
					if t, ok := p["text"].(string); ok {
						sent = append(sent, t)
					}
				}
			}
		}
	}
	flush()
	for _, s := range steps {
		if len(s.mocks) > 0 {
			fmt.Fprintf(&b, "      - mock: { %s }\n", strings.Join(s.mocks, ", "))
		}
		for _, l := range s.lines {
			b.WriteString(l + "\n")
		}
	}
	return b.String(), nil
}

// masker replaces personal data consistently within one scenario.
type masker struct {
	keep          bool
	names, phones map[string]string
}

func (m *masker) name(s string) string {
	if m.keep || s == "" {
		return s
	}
	if v, ok := m.names[s]; ok {
		return v
	}
	v := "Клиент " + strconv.Itoa(len(m.names)+1)
	m.names[s] = v
	return v
}

// phone keeps the country code's first digit and replaces the rest, same length.
func (m *masker) phone(digits string) string {
	if m.keep || digits == "" {
		return digits
	}
	if v, ok := m.phones[digits]; ok {
		return v
	}
	n := strconv.Itoa(len(m.phones) + 1)
	v := digits[:1] + strings.Repeat("0", max(len(digits)-1-len(n), 0)) + n
	m.phones[digits] = v
	return v
}

func (m *masker) chat(id string) string { return m.phone(id) }

// text masks free text: letters become х (Cyrillic) or x (Latin) in their case,
// digits 0; short answers are kept.
func (m *masker) text(s string) string {
	if m.keep || utf8.RuneCountInString(s) <= 3 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.Is(unicode.Cyrillic, r) && unicode.IsUpper(r):
			return 'Х'
		case unicode.Is(unicode.Cyrillic, r):
			return 'х'
		case unicode.IsUpper(r):
			return 'X'
		case unicode.IsLetter(r):
			return 'x'
		case unicode.IsDigit(r):
			return '0'
		}
		return r
	}, s)
}

// step writes an inbound event as a scenario step.
func (m *masker) step(ev *event.Event) (string, error) {
	d := ev.Data
	str := func(k string) string { s, _ := d[k].(string); return s }
	switch ev.Type {
	case event.TypeWABAMessage:
		switch kind := str("kind"); kind {
		case "text":
			return "whatsapp: " + q(m.text(ev.Text)), nil
		case "button_reply", "template_button":
			return fmt.Sprintf("button: { id: %s, title: %s }", q(str("reply_id")), q(str("reply_title"))), nil
		case "list_reply":
			return fmt.Sprintf("list: { id: %s, title: %s }", q(str("reply_id")), q(str("reply_title"))), nil
		case "image":
			return "photo: " + q(m.text(str("caption"))), nil
		case "document", "video", "audio", "voice", "sticker":
			return fmt.Sprintf("media: { kind: %s, caption: %s }", kind, q(m.text(str("caption")))), nil
		case "location":
			loc, _ := d["location"].(map[string]any)
			lat, _ := loc["latitude"].(float64)
			lon, _ := loc["longitude"].(float64)
			name, _ := loc["name"].(string)
			addr, _ := loc["address"].(string)
			if !m.keep {
				lat, lon = float64(int(lat)), float64(int(lon)) // the city, not the house
			}
			return fmt.Sprintf("location: { latitude: %g, longitude: %g, name: %s, address: %s }", lat, lon, q(m.text(name)), q(m.text(addr))), nil
		}
	case event.TypeTelegramMessage:
		return "telegram: " + q(m.text(ev.Text)), nil
	case event.TypeTelegramCallback:
		return "callback: " + q(str("data")), nil
	case "okdesk.new_ticket_status":
		s := fmt.Sprintf("okdesk.status: { status: %s, issue: %s", q(str("new_status")), q(str("issue_id")))
		if old := str("old_status"); old != "" {
			s += ", old: " + q(old)
		}
		return s + " }", nil
	case "okdesk.new_comment":
		public, _ := d["comment_public"].(bool)
		author := str("author_type")
		if author != "contact" {
			author = "employee"
		}
		return fmt.Sprintf("okdesk.comment: { text: %s, public: %v, author: %s, issue: %s }", q(m.text(ev.Text)), public, author,
			q(str("issue_id"))), nil
	case event.TypeOneCPayment:
		s := fmt.Sprintf("onec.payment: { status: %s", q(str("status")))
		if v := str("okdesk_issue_id"); v != "" {
			s += ", okdesk_issue_id: " + q(v)
		}
		if v := str("phone"); v != "" {
			s += ", phone: " + q("+"+m.phone(v))
		}
		if v, ok := d["amount"].(float64); ok {
			s += fmt.Sprintf(", amount: %g", v)
		}
		return s + " }", nil
	}
	if c, ok := event.ControlOf(ev); ok {
		return m.control(c)
	}
	// Any other event, as it is (its data masked unless kept).
	keys := make([]string, len(ev.Keys))
	for i, k := range ev.Keys {
		keys[i] = q(m.key(k))
	}
	data, _ := json.Marshal(m.data(ev.Data))
	return fmt.Sprintf("event: { type: %s, keys: [%s], text: %s, data: %s }", q(ev.Type), strings.Join(keys, ", "),
		q(m.text(ev.Text)), data), nil
}

// control writes an operator's control as its scenario step; reasons and texts
// are masked unless kept (operators write about the customer).
func (m *masker) control(c event.Control) (string, error) {
	fields := []string{}
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, k+": "+q(v))
		}
	}
	switch c.Kind {
	case event.ControlTakeover:
		add("reason", m.text(c.Reason))
	case event.ControlHandback:
		add("state", c.State)
		add("reason", m.text(c.Reason))
	case event.ControlMessage:
		if c.Template != nil {
			tpl := map[string]any{"name": c.Template["name"], "language": c.Template["language"]}
			if ps, ok := c.Template["params"].([]any); ok {
				tpl["params"] = m.field("text", ps) // what fills a template is about the customer
			}
			b, _ := json.Marshal(tpl)
			fields = append(fields, "template: "+string(b))
		} else {
			add("text", m.text(c.Text))
		}
	case event.ControlGoto:
		add("state", c.State)
		add("reason", m.text(c.Reason))
	case event.ControlClose:
		add("status", c.Status)
		add("reason", m.text(c.Reason))
	default:
		return "", fmt.Errorf("an operator's %q is not a control a scenario knows", c.Kind)
	}
	if c.Kind == event.ControlHandback && len(fields) == 0 {
		return "handback: true", nil
	}
	add("operator", c.Operator)
	return fmt.Sprintf("%s: { %s }", c.Kind, strings.Join(fields, ", ")), nil
}

// key masks the personal part of a correlation key (a phone, a contact id).
func (m *masker) key(k string) string {
	for _, p := range []string{"waba:", "phone:", "telegram:"} {
		if rest, ok := strings.CutPrefix(k, p); ok {
			if number, contact, two := strings.Cut(rest, ":"); two && p == "waba:" {
				return p + number + ":" + m.phone(contact) // the business number is not personal
			}
			return p + m.phone(rest)
		}
	}
	return k
}

// personal names the fields whose text is about a person (or written by one),
// and masked; ids, codes and statuses a flow branches on are kept.
var personal = []string{"name", "phone", "mail", "text", "content", "description", "comment", "address", "body", "caption", "title"}

// data masks the personal strings of an event's (or a result's) data.
func (m *masker) data(v any) any { return m.field("", v) }

func (m *masker) field(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = m.field(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.field(key, e)
		}
		return out
	case string:
		k := strings.ToLower(key)
		for _, p := range personal {
			if strings.Contains(k, p) {
				return m.text(x)
			}
		}
	}
	return v
}

// mock writes the recorded outcome of an action as a one-shot mock, or "" when
// the default answers the same.
func (m *masker) mock(a Action, result *event.Event) string {
	if result == nil {
		return ""
	}
	if result.Type == event.TypeActionFailed {
		e, _ := result.Data[event.FieldError].(map[string]any)
		return fmt.Sprintf("%s: { fail: { code: %s, status: %v, message: %s }, once: true }", a.Kind, q(fmt.Sprint(e["code"])),
			e["status"], q(m.text(fmt.Sprint(e["message"]))))
	}
	if a.Kind == "send" {
		return "" // a message goes through the real client; its id is of no consequence
	}
	keys := make([]string, 0, len(result.Data))
	for k := range result.Data {
		switch k {
		case event.FieldAction, event.FieldActionID, event.FieldDialogID, "dry_run":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	fields := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		b, _ := json.Marshal(m.field(k, result.Data[k]))
		fields = append(fields, k+": "+string(b))
	}
	fields = append(fields, "once: true")
	return fmt.Sprintf("%s: { %s }", a.Kind, strings.Join(fields, ", "))
}

// q quotes a string for YAML (a JSON string is a YAML double-quoted scalar).
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
