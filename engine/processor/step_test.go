package processor

import (
	"context"
	"testing"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/store"
)

// TestWaiterHearsOnlyRecordedOutcomes: when an event fails every attempt and its
// failure cannot be recorded either, whoever waits for it hears nothing (the event
// is still pending); it hears the outcome once one is committed.
func TestWaiterHearsOnlyRecordedOutcomes(t *testing.T) {
	h, fs := newWrapped(t, "../../flows.d", func(st store.Store) *failingSteps { return &failingSteps{Store: st} })
	ctx := context.Background()
	ev := h.wa("Здравствуйте")
	done := make(chan *core.Applied, 1)
	h.p.waits.Store(ev.DedupeKey, done)
	h.append(ev)
	fs.fail.Store(maxFailures + 1) // every attempt, and the record of the failure
	if err := h.p.RouteOnce(ctx); err != nil {
		t.Fatal(err)
	}
	h.p.Drain()
	select {
	case a := <-done:
		t.Fatalf("told %s before anything was recorded", a.Outcome)
	default:
	}
	if pending, err := h.st.PendingEvents(ctx, 0, 10); err != nil || len(pending) != 1 {
		t.Fatalf("pending %v %v", pending, err)
	}
	h.settle()
	select {
	case a := <-done:
		if a.Outcome != engine.Started {
			t.Errorf("told %s, want started", a.Outcome)
		}
	default:
		t.Error("not told of the committed step")
	}
}
