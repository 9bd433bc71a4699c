package processor

import (
	"context"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/engine/core"
)

// timers turns due timers into timer events in the inbox. A timer is marked fired
// when its event is processed, in the same transaction as the step (core.Apply), so
// it stays due until then: queued remembers the timers whose event is appended and
// not yet processed, so that the next look does not append them again.
type timers struct {
	p      *Processor
	mu     sync.Mutex
	queued map[int64]bool
}

func (t *timers) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if _, err := t.fire(ctx); err != nil && ctx.Err() == nil {
			t.p.log.Error("timers: fire", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// fire appends the events of the timers due now (their dedupe key is the timer id,
// so firing twice stores one event) and returns how many it appended.
func (t *timers) fire(ctx context.Context) (int, error) {
	due, err := t.p.st.DueTimers(ctx, t.p.cfg.Now(), 500)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	t.mu.Lock()
	fresh := due[:0:0]
	for _, d := range due {
		if !t.queued[d.ID] {
			t.queued[d.ID] = true
			fresh = append(fresh, d)
		}
	}
	t.mu.Unlock()
	if len(fresh) == 0 {
		return 0, nil
	}
	if _, err := t.p.inbox.Append(ctx, core.TimerEvents(fresh)); err != nil {
		t.mu.Lock()
		for _, d := range fresh {
			delete(t.queued, d.ID)
		}
		t.mu.Unlock()
		return 0, err
	}
	return len(fresh), nil
}

// unqueue forgets a timer whose event was processed.
func (t *timers) unqueue(id int64) {
	t.mu.Lock()
	delete(t.queued, id)
	t.mu.Unlock()
}
