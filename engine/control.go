package engine

import (
	"fmt"
	"slices"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// ErrControl is a control refused: one that does not fit the dialog's status (a
// takeover of a dialog already with a human, a goto of an ended one; the API
// answers 409), or, with Invalid, one that cannot be done at all (a state the flow
// does not have, a status a dialog cannot be closed with; 422).
type ErrControl struct {
	Msg     string
	Invalid bool
}

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
		return &ErrControl{Msg: fmt.Sprintf("unknown control %q", kind), Invalid: true}
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

// CheckControl says whether control c can be applied to a dialog of flow f: the
// state it names exists, its status and text are usable. (ControlFits says whether
// it fits the dialog's status.)
func CheckControl(f *Flow, c event.Control) error {
	invalid := func(format string, args ...any) error {
		return &ErrControl{Msg: fmt.Sprintf(format, args...), Invalid: true}
	}
	switch c.Kind {
	case event.ControlGoto:
		if c.State == "" {
			return invalid("goto needs a state")
		}
	case event.ControlClose:
		if s := dialog.Status(c.Status); s != dialog.Finished && s != dialog.Abandoned {
			return invalid("close: status %q is not finished or abandoned", c.Status)
		}
	case event.ControlMessage:
		if c.Template == nil && c.Text == "" {
			return invalid("message needs a text or a template")
		}
	case event.ControlTakeover, event.ControlHandback:
	default:
		return invalid("unknown control %q", c.Kind)
	}
	if c.State != "" && f.States[c.State] == nil {
		hint := ""
		if s := DidYouMean(c.State, f.StateNames); s != "" {
			hint = fmt.Sprintf("; did you mean %q?", s)
		}
		return invalid("flow %s has no state %q%s", f.Name, c.State, hint)
	}
	return nil
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
	if err := CheckControl(r.f, c); err != nil {
		r.fail(err)
		return
	}
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
		detail["status"] = c.Status
		r.hist(dialog.HistOperator, "", "", detail)
		r.d.Status, r.d.HandoffUntil = status, nil
		r.res.CancelStates = append(r.res.CancelStates, r.d.State)
		r.hist(dialog.HistEnd, "", "", map[string]any{"status": c.Status, "by": "operator " + c.Operator})
		r.res.Outcome = Stayed
	}
}

// gotoState enters a state an operator named (CheckControl made sure it exists).
func (r *run) gotoState(state string) {
	r.enter(state, r.d.State)
	r.res.Outcome = Transitioned
}
