package processor

import (
	"context"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/engine/core"
)

// timers turns due timers into timer events in the inbox. A timer is marked fired
// in the transaction that settles its event (core.Apply, or core.Failed when the
// event fails), so it stays due until then: queued remembers the timers whose event
// is appended and not yet settled here, so that the next look does not append them
// again. An event's dedupe key is its timer's id, so a timer fires one event.
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
// so firing twice stores one event) and returns how many new events it appended.
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
	res, err := t.p.inbox.Append(ctx, core.TimerEvents(fresh))
	if err != nil {
		t.mu.Lock()
		for _, d := range fresh {
			delete(t.queued, d.ID)
		}
		t.mu.Unlock()
		return 0, err
	}
	// A duplicate is the timer's event stored before (the timer was read as due
	// before its step committed, or on another replica): nothing new was appended,
	// and no step of this append will unqueue it.
	n := 0
	t.mu.Lock()
	for i, r := range res {
		if r.Duplicate {
			delete(t.queued, fresh[i].ID)
		} else {
			n++
		}
	}
	t.mu.Unlock()
	return n, nil
}

// unqueue forgets a timer whose event was settled, or given up on here.
func (t *timers) unqueue(id int64) {
	t.mu.Lock()
	delete(t.queued, id)
	t.mu.Unlock()
}
