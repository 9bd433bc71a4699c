package engine

import (
	"fmt"
	"slices"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// ErrControl marks a control that does not fit the dialog (a takeover of a dialog
// that is already with a human, a goto of an ended one): the API answers 409.
type ErrControl struct{ Msg string }

func (e *ErrControl) Error() string { return e.Msg }

// ControlFits says whether control kind may be applied to a dialog in status s,
// and why not. The API asks before it queues a control; the step asks again.
func ControlFits(kind string, s dialog.Status) error {
	var want []dialog.Status
	switch kind {
	case event.ControlTakeover, event.ControlGoto:
		want = []dialog.Status{dialog.Active}
	case event.ControlHandback:
		want = []dialog.Status{dialog.Handoff}
	case event.ControlMessage, event.ControlClose:
		want = []dialog.Status{dialog.Active, dialog.Handoff}
	default:
		return &ErrControl{Msg: fmt.Sprintf("unknown control %q", kind)}
	}
	if slices.Contains(want, s) {
		return nil
	}
	switch {
	case kind == event.ControlHandback:
		return &ErrControl{Msg: fmt.Sprintf("the dialog is %s, not with a human: handback needs a dialog in handoff", s)}
	case len(want) > 1:
		return &ErrControl{Msg: fmt.Sprintf("the dialog has ended (%s): %s needs a live dialog", s, kind)}
	}
	return &ErrControl{Msg: fmt.Sprintf("the dialog is %s: %s needs an active dialog", s, kind)}
}

// control applies an operator's control to the dialog. Every control is recorded
// in the history with who did it and why.
//
//   - takeover: the dialog goes to handoff now; the bot is silent until an operator
//     hands it back (the flow's own `until` events do not end it).
//   - handback: the handoff ends and the bot resumes in the dialog's state, or
//     enters State when given. Customer messages held during the handoff stay in
//     the history; they are not replayed to the bot (a person has read them).
//   - message: the operator's text (or template) goes to the customer through the
//     outbox, as a `send` on the dialog's channel; the dialog does not move.
//   - goto: an active dialog enters State, running its `enter` actions and timers.
//   - close: the dialog ends as finished or abandoned; its timers are cancelled and
//     its keys released.
func (r *run) control(c event.Control) {
	if err := ControlFits(c.Kind, r.d.Status); err != nil {
		r.fail(err)
		return
	}
	detail := map[string]any{"control": c.Kind, "operator": c.Operator}
	if c.Reason != "" {
		detail["reason"] = c.Reason
	}
	switch c.Kind {
	case event.ControlTakeover:
		r.hist(dialog.HistOperator, "", "", detail)
		r.d.Status, r.d.HandoffUntil = dialog.Handoff, nil
		r.hist(dialog.HistHandoff, "", "", map[string]any{"reason": c.Reason, "by": "operator " + c.Operator})
		r.res.Outcome = Stayed
	case event.ControlHandback:
		if c.State != "" {
			detail["state"] = c.State
		}
		r.hist(dialog.HistOperator, "", "", detail)
		r.endHandoff("by", "operator "+c.Operator)
		r.res.Outcome = Stayed
		if c.State != "" {
			r.gotoState(c.State)
		}
	case event.ControlMessage:
		params := map[string]any{}
		if c.Template != nil {
			params["template"] = normalizeValue(c.Template)
		} else {
			params["text"] = c.Text
		}
		r.hist(dialog.HistOperator, "", "", detail)
		r.res.Effects = append(r.res.Effects, Effect{Kind: "send", Params: params, State: r.d.State})
		r.hist(dialog.HistAction, "", "", map[string]any{"kind": "send", "by": "operator " + c.Operator})
		r.res.Outcome = Stayed
	case event.ControlGoto:
		detail["state"] = c.State
		r.hist(dialog.HistOperator, "", "", detail)
		r.gotoState(c.State)
	case event.ControlClose:
		status := dialog.Status(c.Status)
		if status != dialog.Finished && status != dialog.Abandoned {
			r.fail(&ErrControl{Msg: fmt.Sprintf("close: status %q is not finished or abandoned", c.Status)})
			return
		}
		detail["status"] = c.Status
		r.hist(dialog.HistOperator, "", "", detail)
		r.d.Status, r.d.HandoffUntil = status, nil
		r.res.CancelStates = append(r.res.CancelStates, r.d.State)
		r.hist(dialog.HistEnd, "", "", map[string]any{"status": c.Status, "by": "operator " + c.Operator})
		r.res.Outcome = Stayed
	}
}

// gotoState enters a state an operator named.
func (r *run) gotoState(state string) {
	if r.f.States[state] == nil {
		r.fail(&ErrControl{Msg: fmt.Sprintf("flow %s has no state %q", r.f.Name, state)})
		return
	}
	r.enter(state, r.d.State)
	r.res.Outcome = Transitioned
}
