package store

import (
	"errors"
	"sync"
	"testing"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

// TestKeyScopes: a key is held by one live dialog per scope; the ordinary routing
// reads the ordinary scope only, FindScopedDialogs every other one.
func TestKeyScopes(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		lead, inv, inv2, other := e.newDialog(t, "lead", "s"), e.newDialog(t, "inv", "s"), e.newDialog(t, "inv", "s"), e.newDialog(t, "tally", "s")
		bind := func(scope string, d *Dialog, key string) error {
			return e.s.Step(ctxT(t), func(tx StepTx) error { return tx.BindKeyIn(scope, d.ID, key) })
		}
		for _, b := range []struct {
			scope string
			d     *Dialog
			key   string
			want  error
		}{
			{"", lead, "okdesk:issue:1", nil},
			{"inv", inv, "okdesk:issue:1", nil}, // the same key in another scope
			{"inv", inv2, "okdesk:issue:1", ErrKeyTaken},
			{"inv", inv2, "okdesk:issue:2", nil},
			{"tally", other, "phone:7", nil},
		} {
			if err := bind(b.scope, b.d, b.key); !errors.Is(err, b.want) {
				t.Fatalf("bind %s in %q to %d: %v, want %v", b.key, b.scope, b.d.ID, err, b.want)
			}
		}
		if d, err := e.s.FindDialogByKeys(ctxT(t), []string{"okdesk:issue:2", "okdesk:issue:1"}); err != nil || d == nil || d.ID != lead.ID {
			t.Fatalf("ordinary routing: %v %v", d, err)
		}
		if d, _ := e.s.FindDialogByKeys(ctxT(t), []string{"phone:7"}); d != nil {
			t.Errorf("ordinary routing found the alongside dialog %d", d.ID)
		}
		got, err := e.s.FindScopedDialogs(ctxT(t), []string{"okdesk:issue:2", "okdesk:issue:1", "phone:7"})
		if err != nil {
			t.Fatal(err)
		}
		want := []ScopedDialog{{"inv", inv2.ID}, {"tally", other.ID}} // per scope, the first key's dialog
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("scoped: %+v, want %+v", got, want)
		}
		keys, _ := e.s.DialogKeys(ctxT(t), inv.ID)
		if len(keys) != 1 || keys[0].Scope != "inv" {
			t.Errorf("keys of the alongside dialog: %+v", keys)
		}
		// An ended dialog releases its scoped keys: another takes them.
		e.step(t, func(tx StepTx) error {
			cur, err := tx.LockDialog(inv.ID)
			if err != nil {
				return err
			}
			cur.Status = dialog.Finished
			return tx.UpdateDialog(cur)
		})
		if err := bind("inv", inv2, "okdesk:issue:1"); err != nil {
			t.Errorf("bind a released scoped key: %v", err)
		}
	})
}

// TestDeliveriesOnce: two steps racing to record the same (event, dialog) as
// processed: one commits, the other fails; a failed delivery may be recorded
// again (a re-drive), a processed one never.
func TestDeliveriesOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d1, d2 := e.newDialog(t, "lead", "s"), e.newDialog(t, "inv", "s")
		seq := append1(t, e, msg("m1", "7916", "hi", t0))[0].Seq
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				errs[i] = e.s.Step(ctxT(t), func(tx StepTx) error {
					return tx.RecordDeliveries([]EventDelivery{{EventSeq: seq, DialogID: d1.ID, Flow: "lead", Status: EventProcessed}})
				})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrSettled) && !e.pg:
				t.Errorf("a losing step: %v, want ErrSettled", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d steps recorded the delivery, want 1: %v", ok, errs)
		}
		rec := func(st EventStatus) error {
			return e.s.Step(ctxT(t), func(tx StepTx) error {
				return tx.RecordDeliveries([]EventDelivery{{EventSeq: seq, DialogID: d2.ID, Flow: "inv", Scope: "inv", Status: st, Error: "boom"}})
			})
		}
		if err := rec(EventFailed); err != nil {
			t.Fatal(err)
		}
		if err := rec(EventProcessed); err != nil {
			t.Fatalf("record a failed delivery again: %v", err)
		}
		if err := rec(EventProcessed); !errors.Is(err, ErrSettled) {
			t.Fatalf("record a processed delivery again: %v", err)
		}
		ds, err := e.s.EventDeliveries(ctxT(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 || ds[0].DialogID != d1.ID || ds[1].Scope != "inv" || ds[1].Status != EventProcessed {
			t.Errorf("deliveries: %+v", ds)
		}
		// A dialog's events include those delivered to it.
		evs, _, err := e.s.ListEvents(ctxT(t), EventFilter{DialogID: d2.ID}, Page{})
		if err != nil || len(evs) != 1 || len(evs[0].Deliveries) != 2 {
			t.Errorf("events of the alongside dialog: %+v %v", evs, err)
		}
	})
}

// TestRetentionKeepsSharedEvents: an event that went to two dialogs goes with the
// last of them; the purge of the first leaves it (and the other's delivery).
func TestRetentionKeepsSharedEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d1, d2 := e.newDialog(t, "lead", "s"), e.newDialog(t, "inv", "s")
		seq := append1(t, e, msg("m1", "7916", "hi", t0))[0].Seq
		e.step(t, func(tx StepTx) error {
			if err := tx.RecordDeliveries([]EventDelivery{{EventSeq: seq, DialogID: d1.ID, Flow: "lead", Status: EventProcessed},
				{EventSeq: seq, DialogID: d2.ID, Flow: "inv", Scope: "inv", Status: EventProcessed}}); err != nil {
				return err
			}
			return tx.MarkEvent(seq, EventProcessed, &d1.ID, "")
		})
		// The message's photo, downloaded for the first dialog.
		if err := e.s.SaveFile(ctxT(t), &FileRow{ID: "f1", DialogID: &d1.ID, EventID: &seq, Path: "f1"}); err != nil {
			t.Fatal(err)
		}
		end := func(d *Dialog) {
			e.step(t, func(tx StepTx) error {
				cur, err := tx.LockDialog(d.ID)
				if err != nil {
					return err
				}
				cur.Status = dialog.Finished
				return tx.UpdateDialog(cur)
			})
		}
		end(d1)
		e.clock.Advance(100 * day)
		cutoff := e.clock.Now().Add(-10 * day)
		if _, err := e.s.PurgeDialogs(ctxT(t), []int64{d1.ID}, cutoff); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.PurgeUnattached(ctxT(t), cutoff, 100); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, "events", "id = ?", seq); n != 1 {
			t.Fatalf("the shared event was purged with its first dialog")
		}
		if n := e.count(t, "event_deliveries", ""); n != 1 {
			t.Errorf("%d deliveries left, want the other dialog's", n)
		}
		if n := e.count(t, "files", "id = ?", "f1"); n != 1 {
			t.Errorf("the shared event's file was purged with its first dialog")
		}
		end(d2)
		e.clock.Advance(100 * day)
		if _, err := e.s.PurgeDialogs(ctxT(t), []int64{d2.ID}, e.clock.Now().Add(-10*day)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.PurgeUnattached(ctxT(t), e.clock.Now().Add(-10*day), 100); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, "events", "id = ?", seq) + e.count(t, "event_deliveries", "") + e.count(t, "files", ""); n != 0 {
			t.Errorf("%d rows of the event left after both dialogs were purged", n)
		}
	})
}
