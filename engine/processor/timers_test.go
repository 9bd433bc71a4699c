package processor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// failingSteps is a store whose next steps fail, fail counting them.
type failingSteps struct {
	store.Store
	fail atomic.Int64
}

func (f *failingSteps) Steps(ctx context.Context, fns []func(store.StepTx) error) []error {
	errs := make([]error, len(fns))
	run := fns[:0:0]
	idx := []int{}
	for i, fn := range fns {
		if f.fail.Add(-1) >= 0 {
			errs[i] = errors.New("database busy")
			continue
		}
		run, idx = append(run, fn), append(idx, i)
	}
	if len(run) > 0 {
		for j, err := range f.Store.Steps(ctx, run) {
			errs[idx[j]] = err
		}
	}
	return errs
}

// TestTimerOfAFailedEventFiresOnce: a timer whose event fails every attempt is
// not left due (appended again each look) nor queued forever: its event is marked
// failed and the timer fired with it; the next look finds nothing to fire.
func TestTimerOfAFailedEventFiresOnce(t *testing.T) {
	h, fs := newWrapped(t, "../../flows.d", func(st store.Store) *failingSteps { return &failingSteps{Store: st} })
	ctx := context.Background()
	h.append(h.wa("Здравствуйте"))
	h.settle()
	h.clk.Advance(25 * time.Hour)
	if n, err := h.p.FireTimers(ctx); n != 1 || err != nil {
		t.Fatalf("fire: %d %v", n, err)
	}
	fs.fail.Store(maxFailures) // every attempt at the timer event fails; the record of the failure does not
	if err := h.p.RouteOnce(ctx); err != nil {
		t.Fatal(err)
	}
	h.p.Drain()
	evs, _, err := h.st.ListEvents(ctx, store.EventFilter{}, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, e := range evs {
		if e.Type == event.TypeTimer && e.Status == store.EventFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed timer events, want 1", failed)
	}
	if due, err := h.st.DueTimers(ctx, h.clk.Now(), 10); err != nil || len(due) != 0 {
		t.Errorf("still due after its event failed: %v %v", due, err)
	}
	h.p.timers.mu.Lock()
	queued := len(h.p.timers.queued)
	h.p.timers.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d timers left queued", queued)
	}
	if n, err := h.p.FireTimers(ctx); n != 0 || err != nil {
		t.Errorf("fired again: %d %v", n, err)
	}
}
