package core

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// The flows of the fan tests: an ordinary customer flow and a flow alongside it
// on Okdesk status changes.
const (
	fanLead = `flow: lead
start: { on: waba.message }
initial: open
vars: { n: 0 }
states:
  open:
    on:
      okdesk.new_ticket_status: [ { set: { n: vars.n + 1 } } ]
      waba.message: [ { set: { n: vars.n + 1 } } ]
`
	fanBeside = `flow: beside
start:
  on: okdesk.new_ticket_status
  when: event.data.new_status != "skip"
  alongside: true
initial: waiting
vars: { n: 0 }
states:
  waiting:
    on:
      okdesk.new_ticket_status:
        - when: event.data.new_status == "done"
          goto: done
        - when: event.data.new_status == "boom"
          set: { n: int("not a number") }
        - set: { n: vars.n + 1 }
  done: { final: true }
`
)

// fanWorld is a core on a store in memory with the fan tests' flows.
type fanWorld struct {
	*world
	dir string
	h   *engine.Holder
}

func newFanWorld(t *testing.T, files map[string]string) *fanWorld {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := &fanWorld{world: &world{t: t, ctx: context.Background(), now: t0}, dir: dir}
	st, err := store.Open(w.ctx, store.Memory, nil, store.WithClock(func() time.Time { return w.now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	w.h = engine.NewHolder(nil, engine.MustLoader(registry.DryRun()), dir)
	w.reload()
	w.c = New(Config{Flows: w.h, Reader: st, Now: func() time.Time { return w.now }})
	return w
}

func (w *fanWorld) reload() {
	w.t.Helper()
	if rep := w.h.Reload(); rep.Result != engine.ReloadOK {
		w.t.Fatalf("flows: %+v", rep)
	}
	for _, f := range w.h.Current().Flows() {
		if err := w.st.SaveFlowVersion(w.ctx, store.FlowVersion{Hash: f.Hash, Flow: f.Name, File: f.File, Source: string(f.Source)}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// deliver appends ev and processes it with PlanFan and ApplyFan, as the drivers
// do when it fans out.
func (w *fanWorld) deliver(ev event.Event) []*Applied {
	w.t.Helper()
	res, err := w.st.AppendEvents(w.ctx, []event.Event{ev})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.again(res[0].Seq)
}

// again processes the stored pending event seq.
func (w *fanWorld) again(seq int64) []*Applied {
	w.t.Helper()
	stored := w.event(seq)
	fan, err := w.c.PlanFan(w.ctx, w.st, w.st.LoadDialog, *stored)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []*Applied
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		var err error
		out, err = w.c.ApplyFan(tx, fan)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *fanWorld) okdesk(status string, keys ...string) event.Event {
	w.n++
	return event.Event{Source: event.SourceOkdesk, Type: "okdesk.new_ticket_status", At: w.now, DedupeKey: "o" + string(rune('a'+w.n)),
		Keys: keys, Data: map[string]any{"new_status": status}}
}

func (w *fanWorld) deliveries(seq int64) []store.EventDelivery {
	w.t.Helper()
	ds, err := w.st.EventDeliveries(w.ctx, seq)
	if err != nil {
		w.t.Fatal(err)
	}
	return ds
}

// TestFanOut: the ordinary routing as before, plus the alongside flow: its
// dialog holding a key in its own scope, else its start.
func TestFanOut(t *testing.T) {
	w := newFanWorld(t, map[string]string{"lead.yaml": fanLead, "beside.yaml": fanBeside})
	lead := w.deliver(w.wa("hi")) // a customer's message: the alongside flow does not mention it
	if len(lead) != 1 || !lead[0].Started || lead[0].Flow != "lead" || lead[0].Scope != "" {
		t.Fatalf("start of lead: %+v", lead)
	}
	for _, tc := range []struct {
		ev   event.Event
		want bool
	}{{w.wa("again"), false}, {w.okdesk("x"), true}, {event.ActionResult{ActionID: 1, DialogID: 1, Kind: "http"}.Event(t0), false}} {
		res, err := w.st.AppendEvents(w.ctx, []event.Event{tc.ev})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.c.FansOut(w.event(res[0].Seq)); got != tc.want {
			t.Errorf("FansOut(%s) = %v, want %v", tc.ev.Type, got, tc.want)
		}
		if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
			return tx.MarkEvent(res[0].Seq, store.EventUnrouted, nil, "")
		}); err != nil {
			t.Fatal(err)
		}
	}
	leadID := lead[0].Dialog.ID

	// Ordinary dialog (by waba:7916) and the alongside start, in that order.
	ev := w.okdesk("in_progress", "okdesk:issue:1", "waba:7916")
	out := w.deliver(ev)
	if len(out) != 2 || out[0].Dialog.ID != leadID || out[0].Started || !out[1].Started || out[1].Flow != "beside" ||
		out[1].Scope != "beside" {
		t.Fatalf("fan: %+v", out)
	}
	besideID := out[1].Dialog.ID
	stored := w.event(out[0].Event.Seq)
	if !w.c.FansOut(stored) || stored.Status != store.EventProcessed || *stored.DialogID != leadID {
		t.Errorf("event after the fan: %s dialog %v", stored.Status, stored.DialogID)
	}
	if ds := w.deliveries(stored.Seq); len(ds) != 2 || ds[0].DialogID != leadID || ds[0].Scope != "" || ds[1].DialogID != besideID ||
		ds[1].Scope != "beside" || !ds[1].Started || ds[1].Status != store.EventProcessed {
		t.Errorf("deliveries: %+v", ds)
	}
	// The alongside dialog holds the event's keys in its own scope; the ordinary
	// routing never finds it.
	if d, _ := w.st.FindDialogByKeys(w.ctx, []string{"okdesk:issue:1"}); d != nil {
		t.Errorf("the ordinary routing found dialog %d by the alongside dialog's key", d.ID)
	}
	if sd, _ := w.st.FindScopedDialogs(w.ctx, []string{"okdesk:issue:1"}); len(sd) != 1 || sd[0] != (store.ScopedDialog{Scope: "beside", DialogID: besideID}) {
		t.Errorf("scoped dialogs: %+v", sd)
	}

	// The next change reaches the alongside dialog (no second start) beside the
	// customer's; the ordinary dialog's key in the ordinary scope does not clash.
	out = w.deliver(w.okdesk("in_progress", "okdesk:issue:1", "waba:7916"))
	if len(out) != 2 || out[1].Dialog.ID != besideID || out[1].Started || fmt.Sprint(out[1].Dialog.Vars["n"]) != "1" ||
		fmt.Sprint(out[0].Dialog.Vars["n"]) != "2" {
		t.Fatalf("second change: %+v / %+v", out[0].Dialog, out[1].Dialog)
	}

	// A change of an issue no customer's dialog holds: only the alongside flow
	// takes it, and the event's row names its dialog.
	out = w.deliver(w.okdesk("in_progress", "okdesk:issue:2"))
	if len(out) != 1 || !out[0].Started || out[0].Flow != "beside" {
		t.Fatalf("alongside only: %+v", out)
	}
	if e := w.event(out[0].Event.Seq); e.Status != store.EventProcessed || *e.DialogID != out[0].Dialog.ID || len(w.deliveries(e.Seq)) != 1 {
		t.Errorf("alongside only: event %s dialog %v", e.Status, e.DialogID)
	}

	// Nothing takes it: unrouted, no delivery.
	out = w.deliver(w.okdesk("skip", "okdesk:issue:3"))
	if len(out) != 1 || out[0].Outcome != engine.Unrouted {
		t.Fatalf("nothing: %+v", out)
	}
	if e := w.event(out[0].Event.Seq); e.Status != store.EventUnrouted || e.DialogID != nil || len(w.deliveries(e.Seq)) != 0 {
		t.Errorf("nothing: event %s dialog %v", e.Status, e.DialogID)
	}

	// The alongside dialog ends: the next change starts a new one.
	w.deliver(w.okdesk("done", "okdesk:issue:1"))
	out = w.deliver(w.okdesk("in_progress", "okdesk:issue:1", "waba:7916"))
	if len(out) != 2 || !out[1].Started || out[1].Dialog.ID == besideID {
		t.Fatalf("after the end: %+v", out)
	}
}

// TestFanRedrive: an event one of whose dialogs failed is failed; re-driven, it
// goes again only where it had not been processed.
func TestFanRedrive(t *testing.T) {
	w := newFanWorld(t, map[string]string{"lead.yaml": fanLead, "beside.yaml": fanBeside})
	leadID := w.deliver(w.wa("hi"))[0].Dialog.ID
	besideID := w.deliver(w.okdesk("in_progress", "okdesk:issue:1", "waba:7916"))[1].Dialog.ID

	out := w.deliver(w.okdesk("boom", "okdesk:issue:1", "waba:7916"))
	seq := out[0].Event.Seq
	if len(out) != 2 || out[0].Status != store.EventProcessed || out[1].Status != store.EventFailed {
		t.Fatalf("boom: %+v", out)
	}
	e := w.event(seq)
	if e.Status != store.EventFailed || *e.DialogID != leadID || e.Error == "" {
		t.Fatalf("event: %s %v %q", e.Status, e.DialogID, e.Error)
	}
	// The flow is fixed and the event re-driven: the alongside dialog gets it, the
	// customer's dialog (processed already) does not get it twice.
	fixed := `flow: beside
start: { on: okdesk.new_ticket_status, alongside: true }
initial: waiting
vars: { n: 0 }
migrate: {}
states:
  waiting:
    on:
      okdesk.new_ticket_status: [ { set: { n: vars.n + 10 } } ]
`
	if err := os.WriteFile(filepath.Join(w.dir, "beside.yaml"), []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	w.reload()
	if _, err := w.st.AdoptDialogs(w.ctx, "beside", w.h.Current().Flow("beside").Hash, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.RequeueEvent(w.ctx, seq); err != nil {
		t.Fatal(err)
	}
	out = w.again(seq)
	if len(out) != 1 || out[0].Dialog.ID != besideID || fmt.Sprint(out[0].Dialog.Vars["n"]) != "10" {
		t.Fatalf("re-driven: %+v", out[0].Dialog)
	}
	if d, _ := w.st.GetDialog(w.ctx, leadID); fmt.Sprint(d.Vars["n"]) != "2" {
		t.Errorf("the customer's dialog got the event again: n = %v", d.Vars["n"])
	}
	e = w.event(seq)
	ds := w.deliveries(seq)
	if e.Status != store.EventProcessed || len(ds) != 2 || ds[1].Status != store.EventProcessed || ds[1].Error != "" {
		t.Errorf("after the re-drive: %s %+v", e.Status, ds)
	}
	// Processed everywhere: a second re-drive is refused as for any processed event.
	if _, err := w.st.RequeueEvent(w.ctx, seq); err == nil {
		t.Error("a processed event was re-driven")
	}
}

// TestFanRecordsOnce: a delivery recorded as processed cannot be recorded again
// (a second application of the same event to the same dialog rolls back).
func TestFanRecordsOnce(t *testing.T) {
	w := newFanWorld(t, map[string]string{"lead.yaml": fanLead, "beside.yaml": fanBeside})
	w.deliver(w.wa("hi"))
	out := w.deliver(w.okdesk("in_progress", "okdesk:issue:1", "waba:7916"))
	d := store.EventDelivery{EventSeq: out[0].Event.Seq, DialogID: out[1].Dialog.ID, Flow: "beside", Scope: "beside", Status: store.EventProcessed}
	err := w.st.Step(w.ctx, func(tx store.StepTx) error { return tx.RecordDeliveries([]store.EventDelivery{d}) })
	if err == nil {
		t.Fatal("a processed delivery was recorded twice")
	}
}

// A WhatsApp event for a business number fixit does not serve goes to no flow on
// the fan-out path either (an alongside flow does not start on it), and stays
// unrouted with the reason; a receipt nothing takes still moves its message's
// delivery.
func TestFanUnconfiguredNumberAndReceipt(t *testing.T) {
	w := newFanWorld(t, map[string]string{"beside.yaml": `flow: beside
start: { on: [waba.message, waba.status], alongside: true, when: event.type == "waba.message" }
initial: open
states:
  open:
    on: { waba.message: [ { log: "got it" } ] }
`})
	w.c = New(Config{Flows: w.h, Reader: w.st, Now: func() time.Time { return w.now }, BusinessNumbers: []string{"111"}})
	msg := func(number string) event.Event {
		w.n++
		return event.Event{Source: event.SourceWABA, Type: event.TypeWABAMessage, At: w.now, DedupeKey: fmt.Sprintf("m%d", w.n),
			Keys: []string{event.WABAKey(number, "7916")}, Contact: event.Contact{Channel: event.SourceWABA, ID: "7916"},
			Data: map[string]any{event.FieldPhoneNumberID: number}}
	}
	out := w.deliver(msg("999"))
	if len(out) != 1 || out[0].Dialog != nil {
		t.Fatalf("an event of an unconfigured number went to %+v", out)
	}
	if e := w.event(out[0].Event.Seq); e.Status != store.EventUnrouted || e.Error == "" {
		t.Errorf("event: %s %q, want unrouted with the reason", e.Status, e.Error)
	}
	if out := w.deliver(msg("111")); len(out) != 1 || out[0].Dialog == nil {
		t.Fatalf("an event of a served number did not start the alongside flow: %+v", out)
	}

	// A sent message, then its read receipt, which no flow takes.
	it := store.OutboxItem{Kind: "send", Params: []byte(`{}`)}
	if err := w.st.Step(w.ctx, func(tx store.StepTx) error {
		if err := tx.Enqueue(&it); err != nil {
			return err
		}
		_, err := tx.SetDelivery(it.ID, store.Delivery{MessageID: "wamid.1", Status: store.DeliverySent, At: w.now})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.n++
	w.deliver(event.Event{Source: event.SourceWABA, Type: event.TypeWABAStatus, At: w.now, DedupeKey: "wamid.1:read",
		Data: map[string]any{"status": "read", "message_id": "wamid.1", event.FieldPhoneNumberID: "111"}})
	got, err := w.st.GetOutbox(w.ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Delivery.Status != store.DeliveryRead {
		t.Errorf("delivery after the receipt on the fan-out path: %q, want read", got.Delivery.Status)
	}
}
