package store

import (
	"encoding/json"
	"maps"
	"testing"
	"time"
)

func TestBacklog(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		backlog := func(at time.Time) Backlog {
			t.Helper()
			b, err := e.s.Backlog(ctxT(t), at)
			if err != nil {
				t.Fatalf("Backlog: %v", err)
			}
			return b
		}
		if b := backlog(t0); b.InboxPending != 0 || !b.InboxOldest.IsZero() || len(b.Outbox) != 0 || b.TimersDue != 0 {
			t.Fatalf("empty store: %+v", b)
		}

		// Three events, received a minute apart; the first is then processed.
		var seqs []int64
		for i, key := range []string{"a", "b", "c"} {
			if i > 0 {
				e.clock.Advance(time.Minute)
			}
			seqs = append(seqs, append1(t, e, msg(key, "79160000001", "hi", t0))[0].Seq)
		}
		d := e.newDialog(t, "f", "s")
		e.step(t, func(tx StepTx) error { return tx.MarkEvent(seqs[0], EventProcessed, &d.ID, "") })

		// Actions: two pending, one running, one dead, one done (not counted).
		items := make([]*OutboxItem, 5)
		e.step(t, func(tx StepTx) error {
			for i := range items {
				items[i] = &OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{}`)}
				if err := tx.Enqueue(items[i]); err != nil {
					return err
				}
			}
			return nil
		})
		claimed, err := e.s.ClaimOutbox(ctxT(t), e.clock.Now(), 3, time.Minute)
		if err != nil || len(claimed) != 3 {
			t.Fatalf("ClaimOutbox: %d items, %v", len(claimed), err)
		}
		if err := e.s.FailOutbox(ctxT(t), claimed[0].ID, OutboxDead, "timeout", "gave up"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.CompleteOutbox(ctxT(t), claimed[1].ID, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}

		// Timers: one due in a minute, one in an hour, one cancelled.
		e.step(t, func(tx StepTx) error {
			for _, tm := range []*Timer{
				{DialogID: d.ID, State: "s", Name: "1m", DueAt: e.clock.Now().Add(time.Minute)},
				{DialogID: d.ID, State: "s", Name: "1h", DueAt: e.clock.Now().Add(time.Hour)},
				{DialogID: d.ID, State: "t", Name: "gone", DueAt: e.clock.Now()},
			} {
				if err := tx.ScheduleTimer(tm); err != nil {
					return err
				}
			}
			return tx.CancelTimers(d.ID, "t")
		})

		b := backlog(e.clock.Now().Add(2 * time.Minute))
		if b.InboxPending != 2 || !b.InboxOldest.Equal(t0.Add(time.Minute)) {
			t.Errorf("inbox: %d pending, oldest %v; want 2, %v", b.InboxPending, b.InboxOldest, t0.Add(time.Minute))
		}
		want := map[OutboxStatus]int64{OutboxPending: 2, OutboxRunning: 1, OutboxDead: 1}
		if !maps.Equal(b.Outbox, want) {
			t.Errorf("outbox %v, want %v", b.Outbox, want)
		}
		if b.TimersDue != 1 {
			t.Errorf("%d timers due, want 1", b.TimersDue)
		}
		if b := backlog(e.clock.Now().Add(2 * time.Hour)); b.TimersDue != 2 {
			t.Errorf("two hours on: %d timers due, want 2", b.TimersDue)
		}
	})
}
