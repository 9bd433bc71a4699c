package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// ErrEnded means the dialog an event was routed to ended before the event was
// processed: route the event again (it may start a new dialog).
var ErrEnded = errors.New("dialog has ended")

// ErrWait means the event must wait: its files are still being fetched, or an
// earlier event of its contact's is waiting for its own. Nothing was planned; leave
// the event pending and offer it again once the fetch is settled (a dialog sees a
// contact's messages in the order they came, each with its files).
var ErrWait = errors.New("waiting for the files of a message")

// Waits reports whether ev must wait for files (ErrWait): its own, or those of an
// earlier event that carries one of its keys. Events addressed to a dialog (timers,
// action results, operators' controls) never wait.
func (c *Core) Waits(ctx context.Context, ev *store.Event) (bool, error) {
	if event.Addressed(&ev.Event) {
		return false, nil
	}
	if event.AwaitsFiles(&ev.Event) {
		return true, nil
	}
	return c.cfg.Reader.AwaitingFiles(ctx, ev.Seq, ev.Keys)
}

// Route returns the dialog an event belongs to: the one an addressed event (a
// timer, an action result, an operator's control) names, or the live dialog bound
// to the first of its keys that is bound; 0 when none. A WhatsApp event never
// goes to the WhatsApp dialog of another business number (which its phone: key
// may find): the customer's conversation with this number is another dialog.
// find is the store, or a cache in front of it.
func (c *Core) Route(ctx context.Context, find Reader, ev *store.Event) (int64, error) {
	if event.Addressed(&ev.Event) {
		id, _ := event.Target(&ev.Event)
		return id, nil
	}
	if len(ev.Keys) == 0 || c.unconfigured(&ev.Event) != "" {
		return 0, nil
	}
	d, err := find.RouteKeys(ctx, ev.Keys)
	if err != nil || d == nil {
		return 0, err
	}
	if otherNumber(&ev.Event, d.Channel, d.BusinessNumber) {
		return 0, nil
	}
	return d.ID, nil
}

// otherNumber reports whether ev is a WhatsApp event of another business number
// than that of a dialog's WhatsApp conversation (its channel and business number).
func otherNumber(ev *event.Event, channel, businessNumber string) bool {
	n := event.BusinessNumber(ev)
	return n != "" && channel == event.SourceWABA && businessNumber != "" && businessNumber != n
}

// Plan is a step worked out before its transaction: what the interpreter made of
// an event for a dialog read at some revision, or the flow the event starts, or
// that nothing takes it. Apply writes it; a Plan is never changed by Apply, so a
// transaction that is rolled back and run again applies the same plan.
type Plan struct {
	Event  store.Event
	Dialog *store.Dialog // the dialog as read, with its active keys; nil when none takes the event
	Flow   *engine.Flow  // the dialog's flow version, or the flow the event starts
	Result engine.Result // the step's result (a start is computed in Apply: it needs the new id)
	Notes  []string      // start guards that failed
	Err    error         // the dialog's flow version could not be loaded
	// Unrouted, when set, says why the event is not routed at all (a WhatsApp
	// business number fixit does not serve).
	Unrouted string
}

// Plan works out what ev does to d, the dialog it was routed to (with its active
// keys), or, when d is nil, which flow it starts. It returns ErrEnded when d has
// ended and ev is not addressed to it: route the event again.
func (c *Core) Plan(ctx context.Context, ev store.Event, d *store.Dialog) (*Plan, error) {
	if wait, err := c.Waits(ctx, &ev); err != nil || wait {
		if err == nil {
			err = ErrWait
		}
		return nil, err
	}
	p := &Plan{Event: ev, Dialog: d}
	now := c.cfg.Now()
	m := c.machine()
	defer c.machines.Put(m)
	if d == nil {
		fs := c.cfg.Flows.Current()
		if p.Unrouted = c.unconfigured(&ev.Event); p.Unrouted != "" {
			return p, nil
		}
		if fs == nil || event.Addressed(&ev.Event) {
			return p, nil
		}
		var errs []error
		p.Flow, errs = m.StartFlow(fs, &ev.Event, now)
		for _, err := range errs {
			p.Notes = append(p.Notes, "start guard failed: "+err.Error())
			c.log.Warn("start guard failed", "event_id", ev.ID, "err", c.logText(err.Error(), &ev.Event))
		}
		return p, nil
	}
	if d.Ended() && !event.Addressed(&ev.Event) {
		return nil, ErrEnded
	}
	p.Flow, p.Err = c.Version(ctx, d.Flow, d.FlowHash)
	if p.Err == nil {
		p.Result = m.Step(p.Flow, d.Dialog, &ev.Event, now)
	}
	return p, nil
}

// Applied says what one applied step did.
type Applied struct {
	Event   store.Event
	Outcome engine.Outcome
	Dialog  *store.Dialog // the dialog after the step, with its active keys; nil when unrouted
	Flow    string
	Started bool   // the event started the dialog
	From    string // the dialog's state before the step ("" when it started)
	Result  engine.Result
	Err     error              // with engine.Failed: the runtime error
	Actions []store.OutboxItem // the outbound actions queued, in order, with their ids
	Bound   []string           // the keys newly bound to the dialog
	Notes   []string           // start guards that failed, keys bound elsewhere
	// Scope is the scope of the dialog's keys: "" for an ordinary flow's dialog,
	// the flow's name for an alongside flow's (see engine.Flow.KeyScope).
	Scope string
	// Status and Note are what the step makes of the event: its status (for this
	// dialog, when it went to several) and why no branch ran, or the error.
	Status store.EventStatus
	Note   string
	// Raised counts the events the step stored for later (a failed delivery's
	// waba.message_failed): they wait in the inbox for the router.
	Raised int
	// Unrouted, with engine.Unrouted, is why the event was not even routed (Plan.Unrouted).
	Unrouted string
}

// dialogRef is the id of the dialog the step was for, or nil.
func (a *Applied) dialogRef() *int64 {
	if a.Dialog == nil {
		return nil
	}
	id := a.Dialog.ID
	return &id
}

// Apply writes a plan in tx: the dialog (created, for a start), its keys, timers,
// outbound actions and history, and the event's status; a timer event's timer is
// marked fired whatever the step comes to. Its error is the
// transaction's: roll it back (store.ErrConflict: the dialog changed since it was
// read; plan again from a fresh read).
func (c *Core) Apply(tx store.StepTx, p *Plan) (*Applied, error) {
	a, err := c.applyPlan(tx, p)
	if err != nil {
		return a, err
	}
	return a, tx.MarkEvent(p.Event.Seq, a.Status, a.dialogRef(), a.Note)
}

// applyPlan writes a plan as Apply does, all but the event's status, which it
// leaves in the Applied.
func (c *Core) applyPlan(tx store.StepTx, p *Plan) (*Applied, error) {
	ev := p.Event
	now := c.cfg.Now()
	a := &Applied{Event: ev, Notes: slices.Clone(p.Notes), Unrouted: p.Unrouted}
	// A timer fires once, whatever its event comes to: it is no longer due.
	fired := true
	if t, ok := event.TimerOf(&ev.Event); ok {
		var err error
		if fired, err = tx.FireTimer(t.ID); err != nil {
			return a, fmt.Errorf("fire timer %d: %w", t.ID, err)
		}
		if !fired {
			// Fired already: by this very event, whose processing failed (Failed) and
			// which an operator re-drives now; it is processed as it would have been.
			// Otherwise the timer was cancelled (its dialog left the timer's state).
			st, err := tx.TimerStatus(t.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return a, fmt.Errorf("read timer %d: %w", t.ID, err)
			}
			fired = st == store.TimerFired
		}
	}
	if p.Flow != nil {
		a.Scope = p.Flow.KeyScope()
	}
	if ev.Type == event.TypeWABAStatus && p.Unrouted == "" {
		if err := c.receipt(tx, a, now); err != nil {
			return a, err
		}
	}
	switch {
	case p.Dialog == nil && p.Flow == nil:
		a.Outcome, a.Status, a.Note = engine.Unrouted, store.EventUnrouted, p.Unrouted
		return a, nil
	case p.Dialog == nil:
		return a, c.start(tx, p, a, now)
	}
	row := *p.Dialog // a rolled-back run must not leave its changes to the next
	a.Dialog, a.Flow, a.From = &row, row.Flow, row.State
	id := row.ID
	if t, ok := event.TimerOf(&ev.Event); ok && !fired {
		a.Outcome = engine.Ignored
		if err := tx.AppendHistory(store.HistoryEntry{DialogID: id, At: now, Kind: dialog.HistTimer, EventSeq: &ev.Seq,
			Detail: mustJSON(map[string]any{"timer": t.Name, "ignored": "cancelled before it fired"})}); err != nil {
			return a, fmt.Errorf("append history: %w", err)
		}
		a.Status = store.EventProcessed
		return a, nil
	}
	if p.Err != nil {
		a.Outcome, a.Err = engine.Failed, p.Err
		if err := tx.AppendHistory(store.HistoryEntry{DialogID: id, At: now, Kind: dialog.HistError, EventSeq: &ev.Seq,
			Detail: mustJSON(map[string]any{"error": p.Err.Error()})}); err != nil {
			return a, fmt.Errorf("append history: %w", err)
		}
		a.Status, a.Note = store.EventFailed, p.Err.Error()
		return a, nil
	}
	return a, c.apply(tx, a, p.Result, now)
}

// start creates the dialog of the flow the plan's event starts and applies its
// first step.
func (c *Core) start(tx store.StepTx, p *Plan, a *Applied, now time.Time) error {
	ev, f := p.Event, p.Flow
	row := &store.Dialog{Dialog: dialog.Dialog{Flow: f.Name, FlowHash: f.Hash, State: f.Initial, Status: dialog.Active,
		Vars: map[string]any{}, Channel: ev.Contact.Channel, ContactID: ev.Contact.ID, Phone: ev.Contact.Phone,
		BusinessNumber: event.BusinessNumber(&ev.Event)}}
	if err := tx.CreateDialog(row); err != nil {
		return fmt.Errorf("create dialog: %w", err)
	}
	m := c.machine()
	res := m.Start(f, row.ID, &ev.Event, now)
	c.machines.Put(m)
	a.Dialog, a.Flow, a.Started = row, f.Name, true
	return c.apply(tx, a, res, now)
}

// apply writes a step's result for the dialog a.Dialog (as read): dialog, keys,
// timers, outbox, history, event status.
func (c *Core) apply(tx store.StepTx, a *Applied, res engine.Result, now time.Time) error {
	ev, row := a.Event, a.Dialog
	id := row.ID
	a.Result, a.Outcome, a.Err = res, res.Outcome, res.Err
	hist := make([]store.HistoryEntry, 0, len(res.History)+1)
	for _, h := range res.History {
		var detail json.RawMessage
		if len(h.Detail) > 0 {
			detail = mustJSON(h.Detail)
		}
		hist = append(hist, store.HistoryEntry{DialogID: id, At: now, Kind: h.Kind, EventSeq: &ev.Seq,
			FromState: h.From, ToState: h.To, Detail: detail})
	}
	if res.Outcome == engine.Failed {
		// The history says why; the dialog is unchanged, but for a start: a dialog
		// that fails on its very first step does not live on.
		if err := tx.AppendHistory(hist...); err != nil {
			return fmt.Errorf("append history: %w", err)
		}
		if a.Started {
			row.State, row.Status, row.Vars = res.Dialog.State, res.Dialog.Status, res.Dialog.Vars
			if err := tx.UpdateDialog(row); err != nil {
				return fmt.Errorf("update dialog: %w", err)
			}
		}
		a.Status, a.Note = store.EventFailed, res.Err.Error()
		return nil
	}
	d := res.Dialog
	held := row.Keys // the keys bound before the step
	row.State, row.Status, row.Vars = d.State, d.Status, d.Vars
	row.HandoffUntil, row.EnteredAt = d.HandoffUntil, d.EnteredAt
	row.LastEventID = ev.Seq
	for _, k := range res.Binds {
		if slices.Contains(held, k) || slices.Contains(a.Bound, k) {
			continue // bound already: nothing to write
		}
		if err := tx.BindKeyIn(a.Scope, id, k); err != nil {
			if !errors.Is(err, store.ErrKeyTaken) {
				return fmt.Errorf("bind %s: %w", k, err)
			}
			note := "key " + k + " is bound to another live dialog; not bound here"
			a.Notes = append(a.Notes, note)
			hist = append(hist, store.HistoryEntry{DialogID: id, At: now, Kind: dialog.HistError, EventSeq: &ev.Seq,
				Detail: mustJSON(map[string]any{"error": note})})
			continue
		}
		a.Bound = append(a.Bound, k)
	}
	row.Keys = append(slices.Clip(held), a.Bound...)
	if row.Ended() {
		row.Keys = nil // an ended dialog releases its keys (UpdateDialog)
	}
	cancelled := map[string]bool{}
	for _, s := range res.CancelStates {
		if !cancelled[s] {
			cancelled[s] = true
			if err := tx.CancelTimers(id, s); err != nil {
				return fmt.Errorf("cancel timers: %w", err)
			}
		}
	}
	for _, t := range res.Timers {
		if t.State != d.State {
			continue // the step left that state again
		}
		if err := tx.ScheduleTimer(&store.Timer{DialogID: id, State: t.State, Name: t.Name, DueAt: t.Due}); err != nil {
			return fmt.Errorf("schedule timer: %w", err)
		}
	}
	for _, e := range res.Effects {
		params, err := json.Marshal(e.Params)
		if err != nil {
			return fmt.Errorf("encode %s parameters: %w", e.Kind, err)
		}
		it := store.OutboxItem{DialogID: &id, Kind: e.Kind, Params: params, NextAt: now}
		if err := tx.Enqueue(&it); err != nil {
			return fmt.Errorf("enqueue %s: %w", e.Kind, err)
		}
		a.Actions = append(a.Actions, it)
	}
	if err := tx.UpdateDialog(row); err != nil {
		return fmt.Errorf("update dialog: %w", err)
	}
	if err := tx.AppendHistory(hist...); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	a.Status, a.Note = store.EventProcessed, note(res, a.From)
	return nil
}

// note is what an event's status records besides "processed": why no branch ran.
func note(res engine.Result, state string) string {
	if res.Outcome != engine.Unhandled {
		return ""
	}
	if state == "" {
		state = res.Dialog.State
	}
	if len(res.Guards) > 0 {
		return "no branch matched in state " + state
	}
	return "unhandled in state " + state
}

// Failed records that ev could not be processed after every attempt. The timer
// of a timer event is marked fired with it: a timer fires once, and its failed
// event is re-driven like any other.
func (c *Core) Failed(tx store.StepTx, ev store.Event, dialogID int64, err error) error {
	var ref *int64
	if dialogID > 0 {
		ref = &dialogID
	}
	if t, ok := event.TimerOf(&ev.Event); ok {
		if _, err := tx.FireTimer(t.ID); err != nil {
			return fmt.Errorf("fire timer %d: %w", t.ID, err)
		}
	}
	return tx.MarkEvent(ev.Seq, store.EventFailed, ref, err.Error())
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"unencodable": err.Error()})
	}
	return b
}
