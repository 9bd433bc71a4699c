package event

import (
	"strconv"
	"strings"
	"time"
)

// fixit's own events (timers, action results, operator controls) are addressed to
// one dialog. Their data is built and read only here, so the field names and their
// encoding (decimal strings, which survive a JSON round trip unchanged and read
// well in a flow's templates) are written once.

// Data fields of fixit's own events.
const (
	FieldDialogID = "dialog_id" // the dialog the event is addressed to
	FieldTimerID  = "timer_id"  // the timer that fired
	FieldTimer    = "timer"     // its name in the flow, e.g. "24h#0"
	FieldState    = "state"     // the state that started it
	FieldAction   = "action"    // the action kind whose result this is
	FieldActionID = "action_id" // the outbox item
	FieldError    = "error"     // action.failed: {code, message, status, api_code, connector, attempts, dead}
)

// Timer is a timer that fell due.
type Timer struct {
	ID       int64
	DialogID int64
	State    string // the state whose `after` started it
	Name     string
}

// TimerFired returns the event of a timer that fell due at due. Its dedupe key is
// the timer's id, so a timer fired twice is stored once.
func TimerFired(t Timer, due time.Time) Event {
	id := itoa(t.ID)
	return Event{Source: SourceTimer, Type: TypeTimer, At: due, DedupeKey: "timer:" + id, Data: map[string]any{
		FieldTimer: t.Name, FieldState: t.State, FieldTimerID: id, FieldDialogID: itoa(t.DialogID)}}
}

// TimerOf reads the timer of a timer event; false when ev is not one.
func TimerOf(ev *Event) (Timer, bool) {
	if ev.Type != TypeTimer {
		return Timer{}, false
	}
	t := Timer{State: text(ev.Data[FieldState]), Name: text(ev.Data[FieldTimer])}
	var ok1, ok2 bool
	t.ID, ok1 = id(ev.Data[FieldTimerID])
	t.DialogID, ok2 = id(ev.Data[FieldDialogID])
	return t, ok1 && ok2
}

// ActionResult is the outcome of an outbound action, fed back to its dialog.
type ActionResult struct {
	ActionID int64
	DialogID int64
	Kind     string         // the action kind, e.g. "okdesk.create_issue"
	Failed   bool           // action.failed rather than action.done
	Data     map[string]any // the result's fields, or {"error": {…}} when failed
	// Round counts the times an operator queued the action again: each round's
	// result is an event of its own.
	Round int
}

// Event returns the result event, dated at. Its dedupe key names the action, the
// outcome and the round, so a result recorded twice is stored once.
func (r ActionResult) Event(at time.Time) Event {
	typ := TypeActionDone
	if r.Failed {
		typ = TypeActionFailed
	}
	data := make(map[string]any, len(r.Data)+3)
	for k, v := range r.Data {
		data[k] = v
	}
	data[FieldAction], data[FieldActionID], data[FieldDialogID] = r.Kind, itoa(r.ActionID), itoa(r.DialogID)
	key := "action:" + itoa(r.ActionID) + ":" + strings.TrimPrefix(typ, "action.")
	if r.Round > 0 {
		key += ":r" + strconv.Itoa(r.Round)
	}
	return Event{Source: SourceAction, Type: typ, At: at, Data: data, DedupeKey: key}
}

// ActionOf reads the action a result event answers: its outbox id and kind.
func ActionOf(ev *Event) (id int64, kind string, ok bool) {
	if ev.Source != SourceAction {
		return 0, "", false
	}
	id, ok = IDField(ev.Data, FieldActionID)
	return id, text(ev.Data[FieldAction]), ok
}

// Addressed reports whether ev is one of fixit's own events, which name their
// dialog instead of carrying correlation keys.
func Addressed(ev *Event) bool {
	return ev.Source == SourceTimer || ev.Source == SourceAction || ev.Source == SourceOperator ||
		ev.Type == TypeWABAMessageFailed
}

// TypeWABAMessageFailed is the event a dialog gets when WhatsApp reports that a
// message it sent was not delivered (a failed status receipt).
const TypeWABAMessageFailed = "waba.message_failed"

// Data fields of waba.message_failed.
const (
	FieldOutboxID   = "outbox_id"   // the outbox item of the send
	FieldMessageID  = "message_id"  // the wamid the send returned
	FieldErrorCode  = "error_code"  // Meta's error code (a number), 0 when the receipt gave none
	FieldErrorTitle = "error_title" // Meta's error title
)

// MessageFailed is a failed delivery of a message a dialog sent.
type MessageFailed struct {
	DialogID   int64
	OutboxID   int64
	MessageID  string
	ErrorCode  int
	ErrorTitle string
	// Recipient is the customer the message was for: the event's contact.
	Recipient Contact
}

// Event is the waba.message_failed event addressed to the dialog. Its dedupe key is
// the message's: one failure per message, however often Meta repeats it.
func (m MessageFailed) Event(at time.Time) Event {
	return Event{Source: SourceWABA, Type: TypeWABAMessageFailed, At: at, Contact: m.Recipient,
		DedupeKey: "waba:" + m.MessageID + ":message_failed", Text: m.ErrorTitle,
		Data: map[string]any{FieldDialogID: itoa(m.DialogID), FieldOutboxID: itoa(m.OutboxID),
			FieldMessageID: m.MessageID, FieldErrorCode: float64(m.ErrorCode), FieldErrorTitle: m.ErrorTitle}}
}

// Target returns the dialog an addressed event names; false when it names none.
func Target(ev *Event) (int64, bool) {
	if !Addressed(ev) {
		return 0, false
	}
	return IDField(ev.Data, FieldDialogID)
}

// IDField reads a positive id written by these builders (a decimal string); a
// number is accepted too, for events injected by hand.
func IDField(data map[string]any, field string) (int64, bool) {
	return id(data[field])
}

func id(v any) (int64, bool) {
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil && n > 0
	case float64:
		n := int64(x)
		return n, float64(n) == x && n > 0
	case int64:
		return x, x > 0
	case int:
		return int64(x), x > 0
	}
	return 0, false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func text(v any) string {
	s, _ := v.(string)
	return s
}

// Operator controls: a person's action on one dialog, from the admin API or the
// console. They reach the dialog as events, in its order, like everything else.
const (
	ControlTakeover = "takeover" // the dialog goes to handoff; the bot falls silent
	ControlHandback = "handback" // a handoff ends; the dialog resumes (at State, when given)
	ControlMessage  = "message"  // the operator writes to the customer (Text or Template)
	ControlGoto     = "goto"     // an active dialog moves to State, entering it
	ControlClose    = "close"    // the dialog ends with Status (finished or abandoned)
)

// Controls lists every control.
var Controls = []string{ControlTakeover, ControlHandback, ControlMessage, ControlGoto, ControlClose}

// TypeOperatorPrefix starts the event type of every control: "operator.takeover".
const TypeOperatorPrefix = "operator."

// Control is one operator control of a dialog.
type Control struct {
	Kind     string // one of the Control constants
	DialogID int64
	Operator string // who: "admin", or an operator's name
	Reason   string
	State    string         // handback (optional), goto
	Status   string         // close: finished or abandoned
	Text     string         // message
	Template map[string]any // message: {name, language, params}
}

// Event returns the control's event, dated at. Its dedupe key is left empty: every
// control is a new event.
func (c Control) Event(at time.Time) Event {
	data := map[string]any{FieldDialogID: itoa(c.DialogID), "control": c.Kind, "operator": c.Operator}
	for k, v := range map[string]string{"reason": c.Reason, "state": c.State, "status": c.Status, "text": c.Text} {
		if v != "" {
			data[k] = v
		}
	}
	if c.Template != nil {
		data["template"] = c.Template
	}
	return Event{Source: SourceOperator, Type: TypeOperatorPrefix + c.Kind, At: at, Text: c.Text, Data: data}
}

// ControlOf reads the control an operator event carries; false when ev is not one.
func ControlOf(ev *Event) (Control, bool) {
	if ev.Source != SourceOperator {
		return Control{}, false
	}
	c := Control{Kind: text(ev.Data["control"]), Operator: text(ev.Data["operator"]), Reason: text(ev.Data["reason"]),
		State: text(ev.Data["state"]), Status: text(ev.Data["status"]), Text: text(ev.Data["text"])}
	c.Template, _ = ev.Data["template"].(map[string]any)
	var ok bool
	c.DialogID, ok = IDField(ev.Data, FieldDialogID)
	return c, ok && strings.TrimPrefix(ev.Type, TypeOperatorPrefix) == c.Kind
}
