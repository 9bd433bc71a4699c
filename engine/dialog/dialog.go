// Package dialog defines the words every part of fixit uses about a dialog: its
// lifecycle status, the kinds of lines in its history, and the Dialog itself, as the
// interpreter steps it, the store keeps it and a connector sees it.
//
// It depends on nothing else in fixit, so the engine, the store, the connectors and
// the server all share these definitions instead of spelling them again.
package dialog

import (
	"slices"
	"time"
)

// Status is the lifecycle status of a dialog.
type Status string

// Dialog statuses. Finished, abandoned and failed dialogs have ended: their keys are
// released and their pending timers cancelled.
const (
	Active    Status = "active"
	Handoff   Status = "handoff"
	Finished  Status = "finished"
	Abandoned Status = "abandoned"
	Failed    Status = "failed"
)

// Statuses lists every status, live ones first.
var Statuses = []Status{Active, Handoff, Finished, Abandoned, Failed}

// FinalStatuses lists the statuses a final state may give its dialog.
var FinalStatuses = []Status{Finished, Abandoned, Failed}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Ended reports whether a dialog in status s is over.
func (s Status) Ended() bool { return slices.Contains(FinalStatuses, s) }

// HistoryKind says what one line of a dialog's history records.
type HistoryKind string

// History kinds.
const (
	HistEvent      HistoryKind = "event"      // an event reached the dialog (or started it)
	HistGuard      HistoryKind = "guard"      // a branch's guard was tried, with its result
	HistTransition HistoryKind = "transition" // the dialog entered a state
	HistAction     HistoryKind = "action"     // an outbound action was queued
	HistSet        HistoryKind = "set"        // a variable was written
	HistBind       HistoryKind = "bind"       // a correlation key was bound
	HistLog        HistoryKind = "log"        // the flow's log action
	HistHandoff    HistoryKind = "handoff"    // a handoff began or ended, or an event was held by one
	HistUnhandled  HistoryKind = "unhandled"  // no branch ran for the event
	HistIgnored    HistoryKind = "ignored"    // the state ignores the event
	HistTimer      HistoryKind = "timer"      // a timer fired (or was found cancelled)
	HistError      HistoryKind = "error"      // a runtime error; the step changed nothing else
	HistEnd        HistoryKind = "end"        // the dialog ended, with its final status
	HistOperator   HistoryKind = "operator"   // an operator's control: who, what and why
	HistDelivery   HistoryKind = "delivery"   // a message the dialog sent failed to arrive, or was read
)

// HistoryKinds lists every history kind.
var HistoryKinds = []HistoryKind{HistEvent, HistGuard, HistTransition, HistAction, HistSet, HistBind, HistLog,
	HistHandoff, HistUnhandled, HistIgnored, HistTimer, HistError, HistEnd, HistOperator, HistDelivery}

// Valid reports whether k is one of the history kinds.
func (k HistoryKind) Valid() bool { return slices.Contains(HistoryKinds, k) }

// Dialog is one conversation of a flow: what the interpreter steps, what the store
// keeps (with its own bookkeeping around it) and what a connector may know of the
// dialog an action belongs to.
type Dialog struct {
	ID       int64
	Flow     string
	FlowHash string // the flow version the dialog runs
	State    string
	Status   Status
	// Vars are the flow variables; numbers are float64 (the JSON data model).
	Vars      map[string]any
	Channel   string // reply channel: "waba", "telegram", or "" for dialogs without a customer
	ContactID string // wa_id or Telegram chat id
	Phone     string // E.164 digits, when known
	// BusinessNumber is the WhatsApp business number (its phone_number_id) the
	// dialog's customer wrote to; its WhatsApp messages leave from it. Empty for
	// other channels, and for WhatsApp dialogs that did not start with a message
	// (they use the first configured number).
	BusinessNumber string
	// HandoffUntil lists the event types that hand a dialog in handoff back to the bot.
	HandoffUntil []string
	CreatedAt    time.Time // when the dialog started
	EnteredAt    time.Time // when the current state was entered (zero when unknown)
	// Keys are the dialog's active correlation keys, where the dialog was loaded
	// with them (the interpreter needs them; a list of dialogs does not).
	Keys []string
}

// Ended reports whether the dialog has finished in any way.
func (d *Dialog) Ended() bool { return d.Status.Ended() }

// Clone returns a copy whose Vars, Keys and HandoffUntil may be changed without
// touching d's.
func (d Dialog) Clone() Dialog {
	vars := make(map[string]any, len(d.Vars))
	for k, v := range d.Vars {
		vars[k] = v
	}
	d.Vars = vars
	d.Keys = slices.Clone(d.Keys)
	d.HandoffUntil = slices.Clone(d.HandoffUntil)
	return d
}
