package console

import (
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Who wrote a message of the thread.
const (
	FromCustomer = "customer"
	FromBot      = "bot"
	FromOperator = "operator"
	FromNote     = "note" // a line about the dialog: a handoff, a control, its end
)

// Message is one bubble of a dialog's thread.
type Message struct {
	At   time.Time
	From string // FromCustomer, FromBot, FromOperator or FromNote
	// Name is the operator's name (FromOperator, and a note of a control), or
	// what a note is about: "handoff", "handback", "end".
	Name string
	// Control is the control a note tells of ("takeover", "goto", "retry"…).
	Control string
	Text    string
	// Held marks a customer's message that arrived while a person had the dialog.
	Held bool
	// Delivery is what is known of a message to the customer: queued, sending,
	// sent, delivered, read or failed ("" for the customer's own messages).
	Delivery string
	// Error is why a message to the customer failed.
	Error string
	// ActionID is the outbox item of a message to the customer (0 for others).
	ActionID int64
}

// Step is one step of the trace: an event and what the dialog did with it.
type Step struct {
	At    time.Time
	Event *store.Event // nil for lines written outside a step (an operator's retry)
	Lines []TraceLine
}

// TraceLine is one history line of a step, with the outbox item of an action.
type TraceLine struct {
	store.HistoryEntry
	// Detail is the line's detail document, decoded.
	Detail map[string]any
	// Action is the outbox item an action line queued, when it is known.
	Action *store.OutboxItem
}

// Field returns a detail field as text ("" when absent).
func (l TraceLine) Field(name string) string {
	v, ok := l.Detail[name]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v) // decoded JSON values encode again
	return string(b)
}

// Result returns a guard line's result.
func (l TraceLine) Result() bool { b, _ := l.Detail["result"].(bool); return b }

// DialogView is a dialog as the console shows it: the thread and the trace.
type DialogView struct {
	Messages []Message
	Steps    []Step
	Timers   []store.Timer
	// Actions are the dialog's outbox items, newest first.
	Actions []store.OutboxItem
}

// BuildDialogView puts a dialog's history, the events it names, its outbox items
// and its timers together.
//
// An action line of the history is matched to its outbox item by order: a step
// that applied queues its actions in the order its history lists them, and ids
// grow with every step; a step that failed queued nothing. A line whose kind does
// not fit the next item ends the matching, so a doubt leaves lines unmatched rather
// than wrong.
func BuildDialogView(hist []store.HistoryEntry, events []store.Event, actions []store.OutboxItem, timers []store.Timer) DialogView {
	byID := map[int64]*store.Event{}
	for i := range events {
		byID[events[i].Seq] = &events[i]
	}
	items := append([]store.OutboxItem(nil), actions...)
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	v := DialogView{Timers: timers}
	for i := len(items) - 1; i >= 0; i-- {
		v.Actions = append(v.Actions, items[i])
	}

	// Group the lines into steps: consecutive lines of one event.
	for _, h := range hist {
		line := TraceLine{HistoryEntry: h}
		if len(h.Detail) > 0 {
			_ = json.Unmarshal(h.Detail, &line.Detail) // written by fixit; a bad one shows empty
		}
		n := len(v.Steps)
		if n > 0 && sameEvent(v.Steps[n-1].Lines[0].EventSeq, h.EventSeq) {
			v.Steps[n-1].Lines = append(v.Steps[n-1].Lines, line)
			continue
		}
		st := Step{At: h.At, Lines: []TraceLine{line}}
		if h.EventSeq != nil {
			st.Event = byID[*h.EventSeq]
		}
		v.Steps = append(v.Steps, st)
	}
	next, matching := 0, true
	for si := range v.Steps {
		st := &v.Steps[si]
		if failedStep(st.Lines) {
			continue
		}
		for li := range st.Lines {
			l := &st.Lines[li]
			if l.Kind != dialog.HistAction || !matching {
				continue
			}
			if next >= len(items) || items[next].Kind != l.Field("kind") {
				matching = false
				continue
			}
			l.Action = &items[next]
			next++
		}
	}
	statuses := deliveryStatuses(events)
	for _, st := range v.Steps {
		v.Messages = append(v.Messages, stepMessages(st, statuses, failedStep(st.Lines))...)
	}
	return v
}

func sameEvent(a, b *int64) bool {
	return a != nil && b != nil && *a == *b
}

// failedStep reports whether a step's changes were rolled back: the interpreter's
// failure line names the state it failed in (a note about a key bound elsewhere
// does not).
func failedStep(lines []TraceLine) bool {
	for _, l := range lines {
		if l.Kind == dialog.HistError && l.Field("state") != "" {
			return true
		}
	}
	return false
}

// deliveryStatuses maps WhatsApp message ids to the furthest delivery status their
// status events reported.
func deliveryStatuses(events []store.Event) map[string]string {
	out := map[string]string{}
	for _, e := range events {
		if e.Type != event.TypeWABAStatus {
			continue
		}
		id, _ := e.Data["message_id"].(string)
		st, _ := e.Data["status"].(string)
		if id != "" && waba.StatusRank(st) > waba.StatusRank(out[id]) {
			out[id] = st
		}
	}
	return out
}

// stepMessages is what a step adds to the thread: the customer's message, the
// messages it sent (none when it failed), and notes of handoffs, controls and the
// dialog's end.
func stepMessages(st Step, statuses map[string]string, failed bool) []Message {
	var out []Message
	held := false
	for _, l := range st.Lines {
		if l.Kind == dialog.HistHandoff && l.Field("end") == "" && l.Field("reason") != "" && l.Field("by") == "" {
			held = true
		}
	}
	if e := st.Event; e != nil && isCustomerMessage(e) {
		out = append(out, Message{At: e.ReceivedAt, From: FromCustomer, Text: customerText(e), Held: held})
	}
	for _, l := range st.Lines {
		switch l.Kind {
		case dialog.HistAction:
			if failed || l.Field("kind") != "send" {
				continue
			}
			m := Message{At: l.At, From: FromBot}
			if by := l.Field("by"); strings.HasPrefix(by, "operator ") {
				m.From, m.Name = FromOperator, strings.TrimPrefix(by, "operator ")
			}
			if a := l.Action; a != nil {
				m.ActionID = a.ID
				m.Text = sendText(a.Params)
				m.Delivery, m.Error = delivery(a, statuses)
			} else if st.Event != nil && m.From == FromOperator {
				m.Text = st.Event.Text
				if t, ok := st.Event.Data["text"].(string); ok {
					m.Text = t
				}
			}
			out = append(out, m)
		case dialog.HistOperator:
			if l.Field("control") == event.ControlMessage {
				continue // the operator's bubble says it
			}
			var text []string
			for _, f := range []string{"state", "status", "reason"} {
				if v := l.Field(f); v != "" {
					text = append(text, v)
				}
			}
			out = append(out, Message{At: l.At, From: FromNote, Name: l.Field("operator"), Control: l.Field("control"),
				Text: strings.Join(text, " · ")})
		case dialog.HistHandoff:
			switch {
			case l.Field("end") != "" && strings.HasPrefix(l.Field("by"), "operator "):
				// the operator's handback: the operator's note says so
			case l.Field("end") != "":
				out = append(out, Message{At: l.At, From: FromNote, Name: "handback", Text: l.Field("by")})
			case l.Field("by") == "" && l.Field("reason") != "",
				strings.HasPrefix(l.Field("by"), "operator "):
				// an event held during a handoff (the customer's message says so),
				// or an operator's takeover (the operator's note says so)
			default:
				out = append(out, Message{At: l.At, From: FromNote, Name: "handoff", Text: cmp.Or(l.Field("reason"), l.Field("by"))})
			}
		case dialog.HistEnd:
			out = append(out, Message{At: l.At, From: FromNote, Name: "end", Text: l.Field("status")})
		}
	}
	return out
}

// isCustomerMessage reports whether e is a message the customer wrote (or a
// button they pressed).
func isCustomerMessage(e *store.Event) bool {
	switch e.Type {
	case event.TypeWABAMessage, event.TypeTelegramMessage, event.TypeTelegramCallback:
		return true
	}
	return false
}

// customerText is what the thread shows of a customer's message: its text, or
// the kind of content when it has none.
func customerText(e *store.Event) string {
	if e.Text != "" {
		return e.Text
	}
	if k, ok := e.Data["kind"].(string); ok && k != "" {
		return "[" + k + "]"
	}
	return "[" + e.Type + "]"
}

// sendText is what the thread shows of a send action: its text, or the template's
// name, or the kind of message.
func sendText(params json.RawMessage) string {
	var p map[string]any
	_ = json.Unmarshal(params, &p) // written by fixit; a bad one shows empty
	if t, ok := p["text"].(string); ok && t != "" {
		return t
	}
	if t, ok := p["template"].(map[string]any); ok {
		return fmt.Sprintf("[template %v]", t["name"])
	}
	return "[message]"
}

// delivery tells what is known of an action's message: the outbox's status, then
// WhatsApp's delivery reports.
func delivery(a *store.OutboxItem, statuses map[string]string) (string, string) {
	switch a.Status {
	case store.OutboxPending:
		return "queued", ""
	case store.OutboxRunning:
		return "sending", ""
	case store.OutboxFailed, store.OutboxDead:
		return "failed", a.LastError
	}
	switch d := a.Delivery; d.Status {
	case store.DeliveryFailed:
		return "failed", d.Error
	case store.DeliveryDelivered, store.DeliveryRead:
		return string(d.Status), ""
	}
	var r map[string]any
	_ = json.Unmarshal(a.Result, &r) // written by fixit; a bad one is "sent"
	if st := statuses[connectors.MessageID(r)]; st != "" {
		return st, ""
	}
	return "sent", ""
}
