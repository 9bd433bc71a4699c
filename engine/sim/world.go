package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/files"
	"github.com/fixit-exchange/fixit/engine/store"
)

// DefaultStartText is where the fake clock starts unless a scenario says otherwise.
const DefaultStartText = "2026-11-29T10:00:00+03:00"

// DefaultStart returns DefaultStartText as a time.
func DefaultStart() time.Time {
	t, err := time.Parse(time.RFC3339, DefaultStartText)
	if err != nil {
		panic(err) // a constant that does not parse is a programmer error
	}
	return t
}

// Options configure a World.
type Options struct {
	Start time.Time      // the fake clock's start; DefaultStart() when zero
	Env   map[string]any // the FLOW_* variables flows read as env
	// OnStep, when set, hears every step that did not fail, with the flow version
	// it ran (scenario coverage).
	OnStep func(*engine.Flow, engine.Result)
}

// Outcome says what became of one processed event, in the words of scenario files.
type Outcome string

// Outcomes of an event.
const (
	OutcomeHandled   Outcome = "handled"   // a handler of the state took it (whether or not a branch held)
	OutcomeIgnored   Outcome = "ignored"   // the state ignores it (ignore:, action.done, stale timer)
	OutcomeUnhandled Outcome = "unhandled" // the state has no handler for it: recorded
	OutcomeUnrouted  Outcome = "unrouted"  // no dialog claimed it and no flow started on it
	OutcomeFailed    Outcome = "failed"    // a runtime error: the dialog is unchanged
	OutcomeHeld      Outcome = "held"      // the dialog is with a human: kept in history only
	OutcomeDuplicate Outcome = "duplicate" // same dedupe key as an earlier event: dropped
)

// Outcomes lists every Outcome.
var Outcomes = []Outcome{OutcomeHandled, OutcomeIgnored, OutcomeUnhandled, OutcomeUnrouted, OutcomeFailed, OutcomeHeld, OutcomeDuplicate}

// outcomeOf words the core's outcome of a step for scenario files.
func outcomeOf(a *core.Applied) Outcome {
	switch a.Outcome {
	case engine.Ignored:
		return OutcomeIgnored
	case engine.Held:
		return OutcomeHeld
	case engine.Failed:
		return OutcomeFailed
	case engine.Unrouted:
		return OutcomeUnrouted
	case engine.Unhandled:
		if len(a.Result.Guards) == 0 {
			return OutcomeUnhandled
		}
	}
	return OutcomeHandled
}

// Processed is one event the world processed and what it did.
type Processed struct {
	Event    event.Event
	Dialog   int64 // 0 when unrouted
	Flow     string
	Started  bool // the event started the dialog
	Outcome  Outcome
	From, To string // the dialog's state before and after
	Status   string // the dialog's status after
	Err      error  // the runtime error, with OutcomeFailed
	Logs     []string
	Notes    []string // start guards that failed, keys that could not be bound
	History  []engine.HistoryEntry
	Actions  []*Action // the outbound actions the step asked for, in order
	// Completed is the pending action whose result this event is (World.Complete),
	// asked for in an earlier step; nil for every other event.
	Completed *Action
}

// Failure is the typed error of a failed action, as action.failed carries it.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"status"`
}

// Action is one outbound action and its outcome.
type Action struct {
	ID      int64
	Dialog  int64
	Kind    string
	Params  map[string]any
	Result  map[string]any // on success
	Failure *Failure       // on failure
	Message *Message       // for send: what the customer got (or would have)
	// Pending: a pending mock held the result back; the action had no result in
	// the step that asked for it, and gets one when World.Complete delivers it.
	Pending bool

	item store.OutboxItem
}

// Answered reports whether the action has its result (or failure).
func (a *Action) Answered() bool { return a.Result != nil || a.Failure != nil }

// Report is what happened while the world handled one input: every event processed
// (the input first, then the timers and action results it led to), in order.
type Report struct {
	Events []*Processed
	// Err is a failure of the world itself (its store), not of a flow.
	Err error
}

// Actions returns every action asked for, in order, including pending ones (and
// not the earlier pending actions whose results the report delivered).
func (r *Report) Actions() []*Action {
	var out []*Action
	for _, p := range r.Events {
		out = append(out, p.Actions...)
	}
	return out
}

// answered returns the actions whose results came in the report, in order: a
// completed pending action first, then those its event led to; pending ones are
// left out (their results come in a later report).
func (r *Report) answered() []*Action {
	var out []*Action
	for _, p := range r.Events {
		if p.Completed != nil {
			out = append(out, p.Completed)
		}
		for _, a := range p.Actions {
			if !a.Pending {
				out = append(out, a)
			}
		}
	}
	return out
}

// Sent returns the messages delivered, in order. A pending send is delivered when
// its result comes.
func (r *Report) Sent() []*Message {
	var out []*Message
	for _, a := range r.answered() {
		if a.Kind == "send" && a.Failure == nil && a.Message != nil {
			out = append(out, a.Message)
		}
	}
	return out
}

// Delivered returns the sends that went out, in order, with their results (the
// message id) and messages. A pending send goes out when its result comes.
func (r *Report) Delivered() []*Action {
	var out []*Action
	for _, a := range r.answered() {
		if a.Kind == "send" && a.Failure == nil && a.Message != nil {
			out = append(out, a)
		}
	}
	return out
}

// Failed returns the actions that failed, in order (a pending action fails when
// its failure comes).
func (r *Report) Failed() []*Action {
	var out []*Action
	for _, a := range r.answered() {
		if a.Failure != nil {
			out = append(out, a)
		}
	}
	return out
}

// Errors returns the runtime errors of the report's steps.
func (r *Report) Errors() []error {
	var out []error
	for _, p := range r.Events {
		if p.Err != nil {
			out = append(out, p.Err)
		}
	}
	return out
}

// simLease is how long a claimed action stays claimed in the world: longer than
// any scenario, so that a result held back by a pending mock is never claimed twice.
const simLease = 100 * 365 * 24 * time.Hour

// Driver is what a scenario runs on: the test world, or the server's own pipeline
// (the agreement test builds one around the real processor and webhooks).
type Driver interface {
	// Build writes the inbound notifications the scenario's steps send.
	Build() *Builder
	// Deliver processes a notification and everything it leads to.
	Deliver(d Delivery) *Report
	// Advance moves the clock, firing the timers that fall due on the way.
	Advance(d time.Duration) *Report
	// Complete delivers the result a pending mock held back (see World.Complete).
	Complete(kind string, m Mock) (*Report, error)
	// Control applies an operator's control.
	Control(c event.Control) (*Report, error)
	// Retry queues the dialog's last failed or dead action of kind again, as an
	// operator does (ErrNothingToRetry when it has none).
	Retry(dialogID int64, kind string) (*Report, error)
	// Mocks is the table that answers outbound actions.
	Mocks() *Mocks
	// Dialog returns a dialog with its active keys, or nil.
	Dialog(id int64) *store.Dialog
	// DialogByKey returns the live dialog bound to key, or nil.
	DialogByKey(key string) *store.Dialog
}

// ProcessedOf words what the core did with one event for a report.
func ProcessedOf(a *core.Applied) *Processed {
	p := &Processed{Event: a.Event.Event, Flow: a.Flow, Started: a.Started, Outcome: outcomeOf(a), From: a.From, Err: a.Err,
		Notes: a.Notes, History: a.Result.History}
	p.Event.ID = a.Event.ID
	if a.Dialog != nil {
		p.Dialog, p.To, p.Status = a.Dialog.ID, a.Dialog.State, string(a.Dialog.Status)
	}
	for _, h := range a.Result.History {
		if h.Kind == dialog.HistLog {
			p.Logs = append(p.Logs, fmt.Sprint(h.Detail["message"]))
		}
	}
	return p
}

// NewAction is an outbound action of a report, before its outcome.
func NewAction(it store.OutboxItem) *Action {
	a := &Action{ID: it.ID, Kind: it.Kind, item: it}
	if it.DialogID != nil {
		a.Dialog = *it.DialogID
	}
	_ = json.Unmarshal(it.Params, &a.Params)
	return a
}

// Settled gives an action its outcome: its result or failure, and the message a
// send built.
func (a *Action) Settled(s core.Settlement, msg *Message) {
	a.Message = msg
	if s.Error != nil {
		a.Failure = &Failure{Code: s.Error.Code, Message: s.Error.Message, Status: s.Error.Status}
		return
	}
	_ = json.Unmarshal(s.Result, &a.Result)
	if a.Result == nil {
		a.Result = map[string]any{}
	}
}

// World runs flows through the processing core (engine/core) on a store in memory,
// a fake clock and mocked connectors: what the server does, one event at a time and
// deterministically. An inbound event is processed with everything it leads to:
// its step's actions are performed at once, in order, and their results are
// processed after the events already waiting. It is not safe for concurrent use.
type World struct {
	*Builder
	ctx    context.Context
	st     *store.GormStore
	core   *core.Core
	flows  *engine.Holder
	now    time.Time
	mocks  *Mocks
	conn   *Connectors
	onStep func(*engine.Flow, engine.Result)

	pending []*Action // actions whose results a pending mock holds back, oldest first
	dir     string    // the file store's folder, removed by Close
}

var _ Driver = (*World)(nil)

// NewWorld returns an empty world running the flows of fs. Close it when done.
func NewWorld(fs *engine.FlowSet, opt Options) (*World, error) {
	start := opt.Start
	if start.IsZero() {
		start = DefaultStart()
	}
	w := &World{ctx: context.Background(), now: start, mocks: NewMocks(), onStep: opt.OnStep}
	w.Builder = NewBuilder(w.Now)
	st, err := store.Open(w.ctx, store.Memory, nil, store.WithClock(w.Now))
	if err != nil {
		return nil, fmt.Errorf("open the world's store: %w", err)
	}
	w.st = st
	w.flows = engine.NewHolder(w.Now, DefaultLoader())
	w.flows.Commit(fs, engine.ReloadReport{Result: engine.ReloadOK})
	for _, f := range fs.Flows() {
		if err := st.SaveFlowVersion(w.ctx, store.FlowVersion{Hash: f.Hash, Flow: f.Name, File: f.File, Source: string(f.Source)}); err != nil {
			st.Close()
			return nil, fmt.Errorf("store flow %s: %w", f.Name, err)
		}
	}
	w.conn = NewConnectors(w.mocks, false)
	if w.dir, err = os.MkdirTemp("", "fixit-world-files-"); err != nil {
		st.Close()
		return nil, fmt.Errorf("create the world's file store: %w", err)
	}
	fs2, err := files.Open(w.dir, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	w.conn.UseFiles(fs2, w.Builder.Content)
	w.core = core.New(core.Config{Flows: w.flows, Reader: st, Registry: w.conn.Registry(), Now: w.Now, Env: opt.Env,
		Logger: slog.New(slog.DiscardHandler)})
	return w, nil
}

// Close releases the world's store and its files.
func (w *World) Close() {
	w.st.Close()
	if w.dir != "" {
		_ = os.RemoveAll(w.dir)
	}
}

// Build writes the inbound notifications of the world, dated by its clock.
func (w *World) Build() *Builder { return w.Builder }

// Now is the fake clock's time.
func (w *World) Now() time.Time { return w.now }

// Mocks is the table that answers outbound actions.
func (w *World) Mocks() *Mocks { return w.mocks }

// Flows is the world's flow set.
func (w *World) Flows() *engine.FlowSet { return w.flows.Current() }

// Dialog returns the dialog with the given id, with its active keys, or nil.
func (w *World) Dialog(id int64) *store.Dialog {
	if id == 0 {
		return nil
	}
	d, err := w.st.LoadDialog(w.ctx, id)
	if err != nil {
		return nil
	}
	return d
}

// Flow returns the flow version a dialog runs.
func (w *World) Flow(d *store.Dialog) *engine.Flow {
	f, _ := w.core.Version(w.ctx, d.Flow, d.FlowHash)
	return f
}

// History returns a dialog's history, oldest first.
func (w *World) History(id int64) []store.HistoryEntry {
	h, _ := w.st.DialogHistory(w.ctx, id)
	return h
}

// DialogByKey returns the live dialog bound to key, or nil.
func (w *World) DialogByKey(key string) *store.Dialog {
	d, err := w.st.FindDialogByKeys(w.ctx, []string{key})
	if err != nil || d == nil {
		return nil
	}
	return w.Dialog(d.ID)
}

// PendingTimers returns the pending timers of a dialog as "state/name@due", sorted by due time.
func (w *World) PendingTimers(id int64) []string {
	ts, _ := w.st.DialogTimers(w.ctx, id)
	slices.SortStableFunc(ts, func(a, b store.Timer) int { return a.DueAt.Compare(b.DueAt) })
	var out []string
	for _, t := range ts {
		if t.Status == store.TimerPending {
			out = append(out, fmt.Sprintf("%s/%s@%s", t.State, t.Name, t.DueAt.In(w.now.Location()).Format(time.RFC3339)))
		}
	}
	return out
}

// Deliver processes a notification and everything it leads to (action results),
// and reports it.
func (w *World) Deliver(d Delivery) *Report { return w.Inject(d.Event) }

// Inject processes ev and everything it leads to (action results), and reports it.
func (w *World) Inject(ev event.Event) *Report {
	rep := &Report{}
	w.append(rep, ev)
	w.drain(rep)
	return rep
}

// Control applies an operator's control to a dialog, as the admin API does: it is
// checked first with the same rules (core.CheckControl: the control fits the
// dialog's flow and status, a free-form WhatsApp message is inside the 24-hour
// window) and refused when it does not pass.
func (w *World) Control(c event.Control) (*Report, error) {
	d := w.Dialog(c.DialogID)
	if d == nil {
		return nil, fmt.Errorf("%s: no dialog %d", c.Kind, c.DialogID)
	}
	if err := w.core.CheckControl(w.ctx, &d.Dialog, c, w.st.LastInbound); err != nil {
		return nil, fmt.Errorf("%s dialog %d: %w", c.Kind, c.DialogID, err)
	}
	rep := w.Inject(c.Event(w.now))
	return rep, rep.Err
}

// Advance moves the clock forward by d, firing every timer that falls due on the
// way, in due order, each at its due time.
func (w *World) Advance(d time.Duration) *Report {
	target := w.now.Add(d)
	rep := &Report{}
	for rep.Err == nil {
		due, err := w.st.DueTimers(w.ctx, target, 1)
		if err != nil {
			rep.Err = err
			break
		}
		if len(due) == 0 {
			break
		}
		if due[0].DueAt.After(w.now) {
			w.now = due[0].DueAt
		}
		w.append(rep, core.TimerEvents(due)...)
		w.drain(rep)
	}
	if target.After(w.now) {
		w.now = target
	}
	return rep
}

// Jump moves the clock to t (when later) and then fires every timer due by then,
// in due order, all at t: as a server does whose timers fire late. Replay uses it
// to fire a recorded timer where it fired.
func (w *World) Jump(t time.Time) *Report {
	if t.After(w.now) {
		w.now = t
	}
	rep := &Report{}
	for rep.Err == nil {
		due, err := w.st.DueTimers(w.ctx, w.now, 1)
		if err != nil {
			rep.Err = err
			break
		}
		if len(due) == 0 {
			break
		}
		w.append(rep, core.TimerEvents(due)...)
		w.drain(rep)
	}
	return rep
}

// Pending returns the actions whose results are held back, oldest first.
func (w *World) Pending() []*Action { return slices.Clone(w.pending) }

// Complete delivers the result of the oldest pending action of kind, as the
// outbox does when a slow connector call ends: m's result fields merged over the
// default result, or m's failure (m.Pending is ignored). The result event and
// everything it leads to are processed now, at the clock's time. It is an error
// when no action of kind is pending.
func (w *World) Complete(kind string, m Mock) (*Report, error) {
	id, ok := w.conn.Release(kind, m)
	if !ok {
		return nil, notPending(kind, w.conn)
	}
	i := slices.IndexFunc(w.pending, func(a *Action) bool { return a.ID == id })
	a := w.pending[i]
	w.pending = slices.Delete(w.pending, i, i+1)
	rep := &Report{}
	w.perform(rep, a)
	w.drain(rep)
	if rep.Err != nil {
		return nil, rep.Err
	}
	if len(rep.Events) > 0 {
		rep.Events[0].Completed = a
	}
	return rep, nil
}

// ErrNothingToRetry is Retry's error when the dialog has no failed or dead action
// of the kind.
var ErrNothingToRetry = errors.New("no failed or dead action of that kind to retry")

// LastFailed returns the id of the dialog's last failed or dead action of kind.
func LastFailed(ctx context.Context, st store.Store, dialogID int64, kind string) (int64, error) {
	items, _, err := st.ListOutbox(ctx, store.OutboxFilter{DialogID: dialogID}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return 0, err
	}
	for _, it := range items { // newest first
		if it.Kind == kind && (it.Status == store.OutboxFailed || it.Status == store.OutboxDead) {
			return it.ID, nil
		}
	}
	return 0, fmt.Errorf("retry %s of dialog %d: %w", kind, dialogID, ErrNothingToRetry)
}

// Retry queues the dialog's last failed or dead action of kind again and performs
// it at once, as an operator's retry does (the same id, a fresh budget of
// attempts); its result and everything that follows are processed now.
func (w *World) Retry(dialogID int64, kind string) (*Report, error) {
	id, err := LastFailed(w.ctx, w.st, dialogID, kind)
	if err != nil {
		return nil, err
	}
	if _, err := w.st.RequeueOutbox(w.ctx, id, w.now); err != nil {
		return nil, fmt.Errorf("retry action %d: %w", id, err)
	}
	rep := &Report{}
	var items []store.OutboxItem
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		items, err = tx.ClaimOutbox(w.now, len(w.pending)+1, simLease)
		return err
	}); err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.ID == id {
			w.perform(rep, NewAction(it))
		}
	}
	w.drain(rep)
	return rep, rep.Err
}

// notPending is Complete's error when nothing of kind is held back.
func notPending(kind string, c *Connectors) error {
	msg := "no " + kind + " action is pending"
	if ids, kinds := c.Held(); len(ids) > 0 {
		var others []string
		for i, id := range ids {
			others = append(others, fmt.Sprintf("%s #%d", kinds[i], id))
		}
		msg += " (pending: " + strings.Join(others, ", ") + ")"
	}
	return fmt.Errorf("complete %s: %s", kind, msg)
}

// Handback hands a dialog that is with a human back to the bot, as an operator does.
func (w *World) Handback(id int64) (*Report, error) {
	return w.Control(event.Control{Kind: event.ControlHandback, DialogID: id, Operator: "scenario"})
}

// append stores events in the world's inbox; a duplicate is reported as dropped.
func (w *World) append(rep *Report, evs ...event.Event) {
	res, err := w.st.AppendEvents(w.ctx, evs)
	if err != nil {
		rep.Err = err
		return
	}
	fetch := false
	for i, r := range res {
		if r.Duplicate {
			rep.Events = append(rep.Events, &Processed{Event: evs[i], Outcome: OutcomeDuplicate})
		} else if event.HasFetch(&evs[i]) {
			fetch = true
		}
	}
	if fetch {
		w.fetch(rep)
	}
}

// fetch performs the downloads of files the store queued with the messages just
// stored (file.fetch), as the outbox does.
func (w *World) fetch(rep *Report) {
	var items []store.OutboxItem
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		items, err = tx.ClaimOutbox(w.now, 100, simLease)
		return err
	}); err != nil {
		rep.Err = err
		return
	}
	for _, it := range items {
		if w.perform(rep, NewAction(it)); rep.Err != nil {
			return
		}
	}
}

// drain processes the pending events in arrival order until none is left but
// those that wait for files (core.ErrWait): they go once their fetch is settled.
func (w *World) drain(rep *Report) {
	after := int64(0)
	for rep.Err == nil {
		evs, err := w.st.PendingEvents(w.ctx, after, 1)
		if err != nil {
			rep.Err = err
			return
		}
		if len(evs) == 0 {
			return
		}
		err = w.process(rep, evs[0])
		switch {
		case errors.Is(err, core.ErrWait):
			after = evs[0].Seq
		case err != nil:
			rep.Err = fmt.Errorf("process event %s (%s): %w", evs[0].ID, evs[0].Type, err)
		default:
			after = 0
		}
	}
}

// process routes, plans and applies one event, then performs its step's actions.
func (w *World) process(rep *Report, ev store.Event) error {
	if w.core.FansOut(&ev) {
		return w.processFan(rep, ev)
	}
	id, err := w.core.Route(w.ctx, w.st, &ev)
	if err != nil {
		return err
	}
	var d *store.Dialog
	if id != 0 {
		if d, err = w.st.LoadDialog(w.ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	plan, err := w.core.Plan(w.ctx, ev, d)
	if errors.Is(err, core.ErrWait) {
		return err
	}
	if errors.Is(err, core.ErrEnded) {
		plan, err = w.core.Plan(w.ctx, ev, nil)
	}
	if err != nil {
		return err
	}
	var a *core.Applied
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		a, err = w.core.Apply(tx, plan)
		return err
	}); err != nil {
		return err
	}
	if w.onStep != nil && a.Outcome != engine.Failed && plan.Flow != nil {
		w.onStep(plan.Flow, a.Result)
	}
	return w.performStep(rep, a)
}

// processFan applies an event that may go to several dialogs (an alongside flow
// takes its type) in one step, as the server does; each dialog it went to is
// reported as an event of its own, the ordinary routing's first.
func (w *World) processFan(rep *Report, ev store.Event) error {
	fan, err := w.core.PlanFan(w.ctx, w.st, w.st.LoadDialog, ev)
	if err != nil {
		return err
	}
	var applied []*core.Applied
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		applied, err = w.core.ApplyFan(tx, fan)
		return err
	}); err != nil {
		return err
	}
	for i, a := range applied {
		if w.onStep != nil && a.Outcome != engine.Failed && i < len(fan.Plans) && fan.Plans[i].Flow != nil {
			w.onStep(fan.Plans[i].Flow, a.Result)
		}
	}
	for _, a := range applied {
		if err := w.performStep(rep, a); err != nil || rep.Err != nil {
			return err
		}
	}
	return nil
}

// performStep reports a step and performs its actions.
func (w *World) performStep(rep *Report, a *core.Applied) error {
	p := ProcessedOf(a)
	rep.Events = append(rep.Events, p)
	if len(a.Actions) == 0 {
		return nil
	}
	// The outbox: the step's actions are claimed and performed now, in order.
	var items []store.OutboxItem
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		items, err = tx.ClaimOutbox(w.now, len(a.Actions)+len(w.pending), simLease)
		return err
	}); err != nil {
		return err
	}
	for _, it := range items {
		act := NewAction(it)
		p.Actions = append(p.Actions, act)
		if w.perform(rep, act); rep.Err != nil {
			return nil
		}
	}
	return nil
}

// perform makes the attempt at an action and records its outcome with the core:
// the item's status and its result event. An action a pending mock holds back gets
// no outcome yet.
func (w *World) perform(rep *Report, a *Action) {
	d := w.Dialog(a.Dialog)
	var dd *dialog.Dialog
	var last time.Time
	if d != nil {
		dd = &d.Dialog
		if d.Channel != "" && d.ContactID != "" {
			last, _ = w.st.LastInbound(w.ctx, d.Channel, d.ContactID)
		}
	}
	res, err := w.core.Perform(w.ctx, a.item, dd, last)
	if errors.Is(err, errHeld) {
		a.Pending = true
		w.pending = append(w.pending, a)
		return
	}
	s := w.core.Settle(a.item, dd, res, err)
	a.Settled(s, w.conn.Message(a.ID))

	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		_, err := s.Record(tx)
		return err
	}); err != nil {
		rep.Err = err
	}
}

// IssueOf returns the Okdesk issue id a dialog is bound to (its last
// okdesk:issue:<id> key), or "".
func IssueOf(d *store.Dialog) string {
	if d == nil {
		return ""
	}
	for i := len(d.Keys) - 1; i >= 0; i-- {
		if id, ok := strings.CutPrefix(d.Keys[i], "okdesk:issue:"); ok {
			return id
		}
	}
	return ""
}

// DefaultLoader checks flows against the connectors fixit ships, in dry-run.
var DefaultLoader = sync.OnceValue(func() *engine.Loader { return engine.MustLoader(registry.DryRun()) })

// Store is the world's store, for inspection.
func (w *World) Store() store.Store { return w.st }
