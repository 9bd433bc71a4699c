package core

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// world is a core on a store in memory, driven by hand.
type world struct {
	t   *testing.T
	ctx context.Context
	st  *store.GormStore
	c   *Core
	now time.Time
	n   int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), now: t0}
	st, err := store.Open(w.ctx, store.Memory, nil, store.WithClock(func() time.Time { return w.now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	h := engine.NewHolder(nil, engine.MustLoader(registry.DryRun()), "testdata")
	if rep := h.Reload(); rep.Result != engine.ReloadOK {
		t.Fatalf("flows: %+v", rep)
	}
	for _, f := range h.Current().Flows() {
		if err := st.SaveFlowVersion(w.ctx, store.FlowVersion{Hash: f.Hash, Flow: f.Name, File: f.File, Source: string(f.Source)}); err != nil {
			t.Fatal(err)
		}
	}
	w.c = New(Config{Flows: h, Reader: st, Now: func() time.Time { return w.now }, Jitter: func() float64 { return 0 }})
	return w
}

func (w *world) wa(text string) event.Event {
	w.n++
	return event.Event{Source: event.SourceWABA, Type: event.TypeWABAMessage, At: w.now, Text: text,
		DedupeKey: "m" + string(rune('a'+w.n)), Keys: []string{"waba:7916", "phone:7916"},
		Contact: event.Contact{Channel: "waba", ID: "7916", Phone: "7916"}, Data: map[string]any{}}
}

// process appends ev and processes it as a driver does: route, plan, apply.
func (w *world) process(ev event.Event) *Applied {
	w.t.Helper()
	return w.processStored(w.store(ev))
}

// store appends ev and returns its Seq.
func (w *world) store(ev event.Event) int64 {
	w.t.Helper()
	res, err := w.st.AppendEvents(w.ctx, []event.Event{ev})
	if err != nil {
		w.t.Fatal(err)
	}
	return res[0].Seq
}

// processStored processes the stored event seq as a driver does.
func (w *world) processStored(seq int64) *Applied {
	w.t.Helper()
	stored, err := w.st.GetEvent(w.ctx, seq)
	if err != nil {
		w.t.Fatal(err)
	}
	id, err := w.c.Route(w.ctx, w.st, stored)
	if err != nil {
		w.t.Fatal(err)
	}
	var d *store.Dialog
	if id != 0 {
		if d, err = w.st.LoadDialog(w.ctx, id); err != nil {
			w.t.Fatal(err)
		}
	}
	plan, err := w.c.Plan(w.ctx, *stored, d)
	if err != nil {
		w.t.Fatal(err)
	}
	var a *Applied
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		a, err = w.c.Apply(tx, plan)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return a
}

func (w *world) event(seq int64) *store.Event {
	w.t.Helper()
	e, err := w.st.GetEvent(w.ctx, seq)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func TestStartStepAndUnrouted(t *testing.T) {
	w := newWorld(t)
	a := w.process(w.wa("hi"))
	if !a.Started || a.Outcome != engine.Started || a.Dialog.State != "ask" || len(a.Actions) != 1 || a.Actions[0].ID == 0 {
		t.Fatalf("start: %+v", a)
	}
	if !slices.Equal(a.Dialog.Keys, []string{"waba:7916", "phone:7916"}) || !slices.Equal(a.Bound, a.Dialog.Keys) {
		t.Errorf("keys %v bound %v", a.Dialog.Keys, a.Bound)
	}
	a = w.process(w.wa("next"))
	if a.Started || a.Outcome != engine.Transitioned || a.From != "ask" || a.Dialog.State != "second" {
		t.Fatalf("step: %+v", a)
	}
	a = w.process(event.Event{Source: event.SourceOkdesk, Type: "okdesk.new_ticket", DedupeKey: "o1", Keys: []string{"okdesk:issue:99"}})
	if a.Outcome != engine.Unrouted || a.Dialog != nil || w.event(a.Event.Seq).Status != store.EventUnrouted {
		t.Fatalf("unrouted: %+v", a)
	}
	// A start guard that is false: nobody takes it.
	w2 := newWorld(t)
	if a := w2.process(w2.wa("no")); a.Outcome != engine.Unrouted {
		t.Errorf("a start guard that does not hold started a dialog: %s", a.Outcome)
	}
}

// TestFailedStart: a dialog whose first step fails does not live on: it has failed
// in its initial state, the event is failed, nothing else is written.
func TestFailedStart(t *testing.T) {
	w := newWorld(t)
	a := w.process(event.Event{Source: event.SourceTelegram, Type: event.TypeTelegramMessage, DedupeKey: "t1",
		Keys: []string{"telegram:5"}, Contact: event.Contact{Channel: "telegram", ID: "5"}, Data: map[string]any{}})
	if a.Outcome != engine.Failed || a.Err == nil || !a.Started || len(a.Actions) != 0 {
		t.Fatalf("applied: %+v", a)
	}
	d, err := w.st.LoadDialog(w.ctx, a.Dialog.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "s" || d.Status != dialog.Failed || len(d.Keys) != 0 {
		t.Errorf("dialog %s/%s keys %v, want s/failed without keys", d.State, d.Status, d.Keys)
	}
	if e := w.event(a.Event.Seq); e.Status != store.EventFailed || e.Error == "" {
		t.Errorf("event %s %q", e.Status, e.Error)
	}
}

func TestRuntimeErrorLeavesTheDialog(t *testing.T) {
	w := newWorld(t)
	w.process(w.wa("hi"))
	a := w.process(w.wa("boom"))
	if a.Outcome != engine.Failed || a.Dialog.State != "ask" {
		t.Fatalf("applied: %+v", a)
	}
	d, _ := w.st.LoadDialog(w.ctx, a.Dialog.ID)
	if d.Status != dialog.Active || d.Vars["n"] != 0.0 {
		t.Errorf("the dialog changed: %s %v", d.Status, d.Vars)
	}
	hist, _ := w.st.DialogHistory(w.ctx, d.ID)
	if last := hist[len(hist)-1]; last.Kind != dialog.HistError {
		t.Errorf("history ends with %s, want error", last.Kind)
	}
}

func TestUnhandledNotes(t *testing.T) {
	w := newWorld(t)
	w.process(w.wa("hi"))
	// A handler whose guard does not hold, and an event type with no handler.
	a := w.process(event.ActionResult{ActionID: 1, DialogID: 1, Kind: "other"}.Event(w.now))
	if a.Outcome != engine.Unhandled || len(a.Result.Guards) != 1 || w.event(a.Event.Seq).Error != "no branch matched in state ask" {
		t.Errorf("no branch: %s %+v %q", a.Outcome, a.Result.Guards, w.event(a.Event.Seq).Error)
	}
	ev := w.wa("x")
	ev.Type, ev.Source = "okdesk.new_comment", event.SourceOkdesk
	a = w.process(ev)
	if a.Outcome != engine.Unhandled || len(a.Result.Guards) != 0 || w.event(a.Event.Seq).Error != "unhandled in state ask" {
		t.Errorf("no handler: %s %q", a.Outcome, w.event(a.Event.Seq).Error)
	}
}

func TestKeyBoundElsewhere(t *testing.T) {
	w := newWorld(t)
	first := w.process(w.wa("hi"))
	w.process(w.wa("bind"))
	other := w.wa("hi")
	other.Keys, other.Contact.ID, other.DedupeKey = []string{"waba:1111"}, "1111", "other"
	w.process(other)
	bind := w.wa("bind")
	bind.Keys, bind.Contact.ID = []string{"waba:1111"}, "1111"
	a := w.process(bind)
	if len(a.Notes) != 1 || len(a.Bound) != 0 {
		t.Fatalf("notes %v bound %v", a.Notes, a.Bound)
	}
	if d, _ := w.st.FindDialogByKeys(w.ctx, []string{"okdesk:issue:7"}); d == nil || d.ID != first.Dialog.ID {
		t.Errorf("the key moved to %v", d)
	}
}

func TestTimerCancelledBeforeItFired(t *testing.T) {
	w := newWorld(t)
	w.process(w.wa("hi"))
	due, err := w.st.DueTimers(w.ctx, t0.Add(2*time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due %v %v", due, err)
	}
	w.process(w.wa("next")) // leaves ask: its timer is cancelled
	a := w.process(TimerEvents(due)[0])
	if a.Outcome != engine.Ignored || a.Dialog.State != "second" {
		t.Fatalf("applied: %+v", a)
	}
	hist, _ := w.st.DialogHistory(w.ctx, a.Dialog.ID)
	var detail map[string]any
	_ = json.Unmarshal(hist[len(hist)-1].Detail, &detail)
	if detail["ignored"] != "cancelled before it fired" {
		t.Errorf("history: %v", detail)
	}
}

// TestRedrivenTimerEvent: a timer event whose processing failed fired its timer
// (a timer fires once); re-driven by an operator, it is processed as it would have
// been, not taken for a cancelled timer.
func TestRedrivenTimerEvent(t *testing.T) {
	w := newWorld(t)
	first := w.process(w.wa("hi"))
	due, err := w.st.DueTimers(w.ctx, t0.Add(2*time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due %v %v", due, err)
	}
	seq := w.store(TimerEvents(due)[0])
	stored := *w.event(seq) // read outside the step: the store in memory has one connection
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		return w.c.Failed(tx, stored, first.Dialog.ID, errors.New("the database went away"))
	}); err != nil {
		t.Fatal(err)
	}
	if st := w.event(seq).Status; st != store.EventFailed {
		t.Fatalf("after the failure: %s", st)
	}
	if _, err := w.st.RequeueEvent(w.ctx, seq); err != nil {
		t.Fatal(err)
	}
	a := w.processStored(seq)
	if a.Outcome != engine.Transitioned || a.Dialog.State != "second" {
		t.Fatalf("re-driven timer event: outcome %s, state %s; want a transition to second", a.Outcome, a.Dialog.State)
	}
}

func TestSettle(t *testing.T) {
	w := newWorld(t)
	dialogID := int64(3)
	it := store.OutboxItem{ID: 9, DialogID: &dialogID, Kind: "okdesk.comment", Attempts: 2}
	tests := []struct {
		name    string
		item    store.OutboxItem
		res     connectors.Result
		err     error
		status  store.OutboxStatus
		event   string
		nextAt  time.Duration
		dryRun  bool
		hasData string
	}{
		{"done", it, connectors.Result{Data: map[string]any{"id": "5"}}, nil, store.OutboxDone, event.TypeActionDone, 0, false, "id"},
		{"dry run", it, connectors.Result{DryRun: true}, nil, store.OutboxDone, event.TypeActionDone, 0, true, "dry_run"},
		{"a 4xx fails for good", it, connectors.Result{}, connectors.HTTPError("okdesk", 422, 0, "no"), store.OutboxFailed, event.TypeActionFailed, 0, false, "error"},
		{"a 5xx is tried again after the backoff", it, connectors.Result{}, connectors.HTTPError("okdesk", 503, 0, "down"), store.OutboxPending, "", 2 * time.Second, false, ""},
		{"Retry-After wins over a shorter backoff", it, connectors.Result{}, connectors.HTTPError("okdesk", 429, time.Minute, "slow"), store.OutboxPending, "", time.Minute, false, ""},
		{"an untyped error is a network failure", it, connectors.Result{}, errors.New("reset"), store.OutboxPending, "", 2 * time.Second, false, ""},
		{"the last attempt's failure is dead", store.OutboxItem{ID: 9, DialogID: &dialogID, Kind: "okdesk.comment", Attempts: 8},
			connectors.Result{}, connectors.HTTPError("okdesk", 503, 0, "down"), store.OutboxDead, event.TypeActionFailed, 0, false, "error"},
		{"an action without a dialog has no result event", store.OutboxItem{ID: 9, Kind: "http", Attempts: 1},
			connectors.Result{Data: map[string]any{}}, nil, store.OutboxDone, "", 0, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := w.c.Settle(tc.item, &dialog.Dialog{ID: 3, Flow: "core", Channel: "waba"}, tc.res, tc.err)
			if s.Status != tc.status || s.DryRun != tc.dryRun {
				t.Fatalf("status %s dry run %v, want %s %v", s.Status, s.DryRun, tc.status, tc.dryRun)
			}
			if tc.status == store.OutboxPending && s.NextAt.Sub(w.now) != tc.nextAt {
				// Jitter 0: equal jitter gives half the step, the step being 2s·2^(attempts-1).
				t.Errorf("next attempt in %s, want %s", s.NextAt.Sub(w.now), tc.nextAt)
			}
			switch {
			case tc.event == "" && s.Event != nil:
				t.Errorf("result event %+v, want none", s.Event)
			case tc.event != "":
				if s.Event == nil || s.Event.Type != tc.event {
					t.Fatalf("result event %+v, want %s", s.Event, tc.event)
				}
				dialogOf, _ := event.Target(s.Event)
				action, kind, _ := event.ActionOf(s.Event)
				if dialogOf != 3 || action != 9 || kind != "okdesk.comment" || s.Event.Data[tc.hasData] == nil {
					t.Errorf("result event data %v", s.Event.Data)
				}
			}
		})
	}
}

// TestControls: an operator takes a dialog over (the bot falls silent), writes to
// the customer, hands it back at a named state; closes it (timers cancelled, keys
// released). A control that does not fit the dialog's status fails.
func TestControls(t *testing.T) {
	w := newWorld(t)
	id := w.process(w.wa("hi")).Dialog.ID
	ctl := func(c event.Control) *Applied {
		c.DialogID, c.Operator = id, "anna"
		return w.process(c.Event(w.now))
	}
	if a := ctl(event.Control{Kind: event.ControlHandback}); a.Outcome != engine.Failed {
		t.Fatalf("handback of an active dialog: %s", a.Outcome)
	}
	a := ctl(event.Control{Kind: event.ControlTakeover, Reason: "angry customer"})
	if a.Outcome != engine.Stayed || a.Dialog.Status != dialog.Handoff || len(a.Dialog.HandoffUntil) != 0 {
		t.Fatalf("takeover: %+v", a)
	}
	if a := w.process(w.wa("next")); a.Outcome != engine.Held || a.Dialog.State != "ask" {
		t.Errorf("a message while taken over: %s in %s", a.Outcome, a.Dialog.State)
	}
	a = ctl(event.Control{Kind: event.ControlMessage, Text: "Здравствуйте, это Анна"})
	if len(a.Actions) != 1 || a.Actions[0].Kind != "send" || a.Dialog.Status != dialog.Handoff {
		t.Fatalf("message: %+v", a)
	}
	a = ctl(event.Control{Kind: event.ControlHandback, State: "second"})
	if a.Outcome != engine.Transitioned || a.Dialog.State != "second" || a.Dialog.Status != dialog.Active || len(a.Actions) != 1 {
		t.Fatalf("handback to second: %+v", a)
	}
	hist, _ := w.st.DialogHistory(w.ctx, id)
	ops := 0
	for _, h := range hist {
		if h.Kind == dialog.HistOperator {
			var d map[string]any
			_ = json.Unmarshal(h.Detail, &d)
			if d["operator"] != "anna" {
				t.Errorf("operator line without the operator: %v", d)
			}
			ops++
		}
	}
	if ops != 3 {
		t.Errorf("%d operator lines in the history, want 3 (the failed handback leaves none)", ops)
	}
	a = ctl(event.Control{Kind: event.ControlGoto, State: "ask"})
	if a.Outcome != engine.Transitioned || a.Dialog.State != "ask" {
		t.Fatalf("goto: %+v", a)
	}
	a = ctl(event.Control{Kind: event.ControlClose, Status: "abandoned", Reason: "spam"})
	if a.Dialog.Status != dialog.Abandoned {
		t.Fatalf("close: %+v", a)
	}
	d, _ := w.st.LoadDialog(w.ctx, id)
	timers, _ := w.st.DialogTimers(w.ctx, id)
	for _, tm := range timers {
		if tm.Status == store.TimerPending {
			t.Errorf("a timer of the closed dialog is pending: %+v", tm)
		}
	}
	if len(d.Keys) != 0 {
		t.Errorf("the closed dialog holds keys %v", d.Keys)
	}
	if a := ctl(event.Control{Kind: event.ControlGoto, State: "ask"}); a.Outcome != engine.Failed {
		t.Errorf("goto of a closed dialog: %s", a.Outcome)
	}
}
