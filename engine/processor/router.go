package processor

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fixit-exchange/fixit/engine/store"
)

// router reads the pending events in arrival order and hands each to a lane: its
// dialog's, or a start lane when no dialog holds its keys yet.
type router struct {
	p      *Processor
	wakeCh chan struct{}

	// The router goroutine's own state.
	cursor    int64            // highest seq handed out
	rescanned time.Time        // when the inbox was last rescanned from the start
	run       map[string]int64 // keys of the current run of unclaimed events → start lane
	nextStart int64            // the last start lane id given out (negative)

	// seen is the highest seq the router has read: every event up to it has been
	// handed to a lane or found settled (a rescan reads from the start again, but
	// never lowers it).
	seen atomic.Int64
	// rescan asks the router to read the inbox from its start at the next look (an
	// event was made pending again).
	rescan atomic.Bool
}

// rescanSoon makes the next look read the inbox from its start.
func (r *router) rescanSoon() { r.rescan.Store(true) }

// wake tells the router that new events were stored.
func (r *router) wake() {
	select {
	case r.wakeCh <- struct{}{}:
	default:
	}
}

// loop routes until ctx is cancelled.
func (r *router) loop(ctx context.Context) {
	tick := time.NewTicker(r.p.cfg.Poll)
	defer tick.Stop()
	for {
		if err := r.once(ctx); err != nil && ctx.Err() == nil {
			r.p.log.Error("router: route pending events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wakeCh:
		case <-tick.C:
		}
	}
}

// once hands out the pending events after the cursor; see Processor.RouteOnce.
func (r *router) once(ctx context.Context) error {
	lanes := r.p.lanes
	if r.rescan.Swap(false) {
		r.cursor = 0
	}
	for ctx.Err() == nil {
		if lanes.full() {
			return nil // woken again when the lanes are half way through
		}
		lanes.forgetFinished()
		evs, err := r.p.st.PendingEvents(ctx, r.cursor, 256)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			if r.cursor > 0 && time.Since(r.rescanned) >= r.p.cfg.Rescan {
				// Nothing new: once per Rescan, read from the start again so that an event
				// left pending by a failed attempt is retried. Events already in a
				// lane are skipped (queued), so nothing waits for the lanes here.
				r.cursor, r.rescanned = 0, time.Now()
				continue
			}
			return nil
		}
		for i := range evs {
			if err := r.route(ctx, evs[i]); err != nil {
				// Neither the cursor nor seen moves past it: the next look routes it again.
				return err
			}
			// In its lane (or settled) now: no longer an event that may come before
			// a result applied out of turn.
			r.p.w.unread.remove(evs[i].Seq)
			r.cursor = evs[i].Seq
			if r.cursor > r.seen.Load() {
				r.seen.Store(r.cursor)
			}
		}
		r.p.w.unread.sweep(r.seen.Load())
	}
	return ctx.Err()
}

// route hands one event to a lane. An error (the store did not answer) hands it
// to none: the caller stops before it.
//
// An event of a known dialog goes to that dialog's lane. An event no dialog claims
// is decided only after every earlier event is processed, since one of them may bind
// its keys: the router waits for the lanes once, at the first such event of a run,
// and hands the run's events to start lanes, one per contact (events sharing a key
// share a lane, so a contact's second message finds the dialog its first one
// started). Before the next event of a known dialog the router waits for the start
// lanes to finish, so that no event overtakes an earlier one of the same dialog.
func (r *router) route(ctx context.Context, ev store.Event) error {
	lanes := r.p.lanes
	if lanes.queued(ev.Seq) {
		return nil
	}
	if r.p.core.FansOut(&ev) {
		// An event that may go to several dialogs (an alongside flow takes its type)
		// is applied, to all of them in one step, once every earlier event is
		// processed and before a later one is handed out: each of its dialogs
		// then gets it in arrival order, and whatever an earlier event bound or
		// started is seen. Only the types of alongside flows pay this.
		lanes.wait()
		r.run = nil
		r.p.stepper.processFan(ev)
		return nil
	}
	binds := r.p.w.binds
	mark := binds.now()
	id, err := r.p.core.Route(ctx, r.p.core.Reader(), &ev)
	if err != nil {
		return fmt.Errorf("find the dialog of event %s: %w", ev.ID, err)
	}
	if id == 0 && r.run == nil {
		lanes.wait()
		// The steps waited for may have bound one of its keys.
		if binds.since(mark, ev.Keys) {
			mark = binds.now()
			if id, err = r.p.core.Route(ctx, r.p.core.Reader(), &ev); err != nil {
				return fmt.Errorf("find the dialog of event %s: %w", ev.ID, err)
			}
		}
		if id == 0 {
			r.run = map[string]int64{}
		}
	}
	if id != 0 {
		if r.run != nil {
			lanes.waitStarts()
			r.run = nil
		}
		lanes.submit(id, ev)
		return nil
	}
	if binds != nil {
		// The start lane trusts this look-up unless one of the keys is bound
		// meanwhile (stepper.once).
		r.p.misses.Store(ev.Seq, mark)
	}
	lanes.submit(r.startLane(ev.Keys), ev)
	return nil
}

// startLane returns the (negative) lane of a run's event that no dialog claims: the
// lane of an earlier event of the run that shares one of its keys, or a new one.
func (r *router) startLane(keys []string) int64 {
	var lane int64
	for _, k := range keys {
		if l, ok := r.run[k]; ok {
			lane = l
			break
		}
	}
	if lane == 0 {
		r.nextStart--
		lane = r.nextStart
		if len(keys) == 0 {
			lane = -1 << 62 // events without keys: one lane, in order
		}
	}
	for _, k := range keys {
		r.run[k] = lane
	}
	return lane
}
