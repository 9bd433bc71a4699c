package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// One event, several flows. The ordinary routing takes an event to the one
// dialog that holds one of its keys in the ordinary scope, or starts the first
// ordinary flow whose start accepts it. Besides that, each alongside flow that
// mentions the event's type (engine.Flow.Mentions) is offered the event: it goes
// to that flow's live dialog holding one of its keys (in the flow's own scope), or,
// when the flow has none, it may start one (the flow's start.on and start.when).
// Every dialog the event goes to is applied in one transaction, and recorded as a
// delivery; the event's own status sums them up.

// FansOut reports whether ev may go to more than one dialog, so that its step must
// be planned with PlanFan: an alongside flow in service mentions its type, or it
// was processed before (a re-drive), when the dialogs that took it already must
// not get it again. For every other event Route, Plan and Apply do the whole job.
func (c *Core) FansOut(ev *store.Event) bool {
	if event.Addressed(&ev.Event) {
		return false
	}
	if ev.Attempts > 0 {
		return true
	}
	fs := c.cfg.Flows.Current()
	return fs != nil && len(fs.AlongsideFor(ev.Type)) > 0
}

// Fan is a step of an event that may go to several dialogs: the ordinary
// routing's plan, then one per alongside flow that takes the event, each
// worked out before the transaction as Plan does. Plans that take nothing are
// left out; Prior holds the deliveries recorded before (a re-drive), whose scopes
// processed the event already and are skipped.
type Fan struct {
	Event store.Event
	Plans []*Plan
	Prior []store.EventDelivery
	Notes []string // start guards that failed
	// Unrouted, when set, says why nothing may take the event (a WhatsApp business
	// number fixit does not serve), as Plan.Unrouted.
	Unrouted string
}

// PlanFan works out where ev goes: the ordinary routing (as Route and Plan do)
// and every alongside flow that mentions its type. load reads a dialog with its
// active keys (store.Store.LoadDialog, or a cache in front of it); find reads the
// routing and the earlier deliveries.
func (c *Core) PlanFan(ctx context.Context, find Reader, load func(context.Context, int64) (*store.Dialog, error),
	ev store.Event) (*Fan, error) {
	// As Plan: the event waits for its files (or an earlier message's) whatever
	// takes it, and a number fixit does not serve goes to no flow at all.
	if wait, err := c.Waits(ctx, &ev); err != nil || wait {
		if err == nil {
			err = ErrWait
		}
		return nil, err
	}
	fan := &Fan{Event: ev}
	if fan.Unrouted = c.unconfigured(&ev.Event); fan.Unrouted != "" {
		return fan, nil
	}
	done := map[string]bool{} // scopes that processed the event before
	if ev.Attempts > 0 {
		prior, err := find.EventDeliveries(ctx, ev.Seq)
		if err != nil {
			return nil, err
		}
		fan.Prior = prior
		for _, d := range prior {
			if d.Status == store.EventProcessed {
				done[d.Scope] = true
			}
		}
	}
	taken := map[int64]bool{}
	add := func(p *Plan) {
		fan.Notes = append(fan.Notes, p.Notes...)
		p.Notes = nil
		if p.Dialog != nil {
			if taken[p.Dialog.ID] {
				return
			}
			taken[p.Dialog.ID] = true
		}
		if p.Dialog != nil || p.Flow != nil {
			fan.Plans = append(fan.Plans, p)
		}
	}
	if !done[""] {
		id, err := c.Route(ctx, find, &ev)
		if err != nil {
			return nil, err
		}
		p, err := c.planFor(ctx, load, ev, id, true)
		if err != nil {
			return nil, err
		}
		add(p)
	}
	fs := c.cfg.Flows.Current()
	if fs == nil {
		return fan, nil
	}
	flows := fs.AlongsideFor(ev.Type)
	if len(flows) == 0 {
		return fan, nil
	}
	var scoped []store.ScopedDialog
	if len(ev.Keys) > 0 {
		var err error
		if scoped, err = find.FindScopedDialogs(ctx, ev.Keys); err != nil {
			return nil, err
		}
	}
	now := c.cfg.Now()
	for _, f := range flows {
		if done[f.Name] {
			continue
		}
		var id int64
		for _, sd := range scoped {
			if sd.Scope == f.Name {
				id = sd.DialogID
			}
		}
		if id != 0 {
			p, err := c.planFor(ctx, load, ev, id, false)
			if err != nil {
				return nil, err
			}
			if p.Dialog != nil && !otherNumber(&ev.Event, p.Dialog.Channel, p.Dialog.BusinessNumber) {
				add(p)
				continue
			}
		}
		m := c.machine()
		ok, err := m.Match(f, &ev.Event, now)
		c.machines.Put(m)
		if err != nil {
			fan.Notes = append(fan.Notes, "start guard failed: "+err.Error())
			c.log.Warn("start guard failed", "event_id", ev.ID, "flow", f.Name, "err", c.logText(err.Error(), &ev.Event))
			continue
		}
		if ok {
			add(&Plan{Event: ev, Flow: f})
		}
	}
	return fan, nil
}

// planFor plans ev for dialog id (0: none). A dialog that is gone or has ended
// is planned as none: for the ordinary routing that is its start; for an
// alongside flow's dialog an empty plan (the flow is offered a start instead).
func (c *Core) planFor(ctx context.Context, load func(context.Context, int64) (*store.Dialog, error), ev store.Event,
	id int64, ordinary bool) (*Plan, error) {
	var d *store.Dialog
	if id != 0 {
		var err error
		if d, err = load(ctx, id); errors.Is(err, store.ErrNotFound) {
			d = nil
		} else if err != nil {
			return nil, err
		}
	}
	if d == nil && !ordinary {
		return &Plan{Event: ev}, nil
	}
	p, err := c.Plan(ctx, ev, d)
	if errors.Is(err, ErrEnded) {
		if !ordinary {
			return &Plan{Event: ev}, nil
		}
		p, err = c.Plan(ctx, ev, nil)
	}
	return p, err
}

// ApplyFan writes a fan's plans in tx, each as Apply does, records every dialog
// the event went to as a delivery, and settles the event: failed when one of
// them failed, else processed when any dialog took it (now or before), else
// unrouted. The event's row names the first dialog. The Applied come in the
// fan's order; with no plan there is one, unrouted.
func (c *Core) ApplyFan(tx store.StepTx, fan *Fan) ([]*Applied, error) {
	ev := fan.Event
	out := make([]*Applied, 0, len(fan.Plans))
	deliveries := make([]store.EventDelivery, 0, len(fan.Plans))
	for _, p := range fan.Plans {
		a, err := c.applyPlan(tx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		if a.Dialog != nil {
			deliveries = append(deliveries, store.EventDelivery{EventSeq: ev.Seq, DialogID: a.Dialog.ID, Flow: a.Flow, Scope: a.Scope,
				Status: a.Status, Started: a.Started, Error: errText(a)})
		}
	}
	if len(out) == 0 {
		// Nothing takes it: what applies to every event still does (a receipt moves
		// its message's delivery), and the reason it is unrouted is kept.
		a, err := c.applyPlan(tx, &Plan{Event: ev, Unrouted: fan.Unrouted})
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	out[0].Notes = append(slices.Clone(fan.Notes), out[0].Notes...)

	status, note := store.EventUnrouted, fan.Unrouted
	var ref *int64
	var failures []string
	for _, d := range fan.Prior {
		if d.Status == store.EventProcessed && ref == nil {
			status, ref = store.EventProcessed, &d.DialogID
		}
	}
	for i, d := range deliveries {
		if i == 0 {
			ref, note = &deliveries[0].DialogID, out[0].Note
		}
		if d.Status == store.EventFailed {
			failures = append(failures, fmt.Sprintf("flow %s (dialog %d): %s", d.Flow, d.DialogID, d.Error))
		} else {
			status = store.EventProcessed
		}
	}
	if len(failures) > 0 {
		status, note = store.EventFailed, strings.Join(failures, "; ")
	}
	// Recorded only when the event went to more than the dialog its row names, or to
	// an alongside flow's: otherwise the row says it all.
	if len(deliveries) > 1 || len(fan.Prior) > 0 || len(deliveries) == 1 && deliveries[0].Scope != "" {
		if err := tx.RecordDeliveries(deliveries); err != nil {
			return nil, err
		}
	}
	return out, tx.MarkEvent(ev.Seq, status, ref, note)
}

// errText is a delivery's error: the step's, when it failed.
func errText(a *Applied) string {
	if a.Status == store.EventFailed {
		return a.Note
	}
	return ""
}
