package processor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// ErrClosed is returned by Append after the inbox has stopped.
var ErrClosed = errors.New("inbox closed")

// Inbox stores inbound events durably with group commit: concurrent Append calls
// share one store transaction, and each returns only after its own events are
// committed.
type Inbox struct {
	write   func(context.Context, func(store.StepTx) error) error
	log     *slog.Logger
	met     *metrics.Metrics
	reqs    chan *appendReq
	wake    func()
	maxSize int
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	// closeMu orders Append against Close: a request is queued under the read
	// lock only while closed is false, so the loop's final drain sees every queued
	// request and none waits for a loop that has returned.
	closeMu sync.RWMutex
	closed  bool

	waiting atomic.Int64 // Append calls not yet answered

	// committed, when set, is told of the events of each committed append.
	committed func([]event.Event)
}

// Waiting is how many Append calls (webhooks, mostly) wait for their commit: the
// intake's pressure, which the lanes yield to (see lanes.yield).
func (in *Inbox) Waiting() int64 { return in.waiting.Load() }

type appendReq struct {
	events []event.Event
	res    []store.AppendResult
	err    error
	done   chan struct{}
}

// NewInbox starts an inbox over st. wake is called after each commit (to wake the
// router); maxBatch bounds the events of one transaction (default 512).
func NewInbox(st store.Store, met *metrics.Metrics, log *slog.Logger, wake func(), maxBatch int) *Inbox {
	return newInbox(st.Step, met, log, wake, maxBatch)
}

// newInbox is NewInbox committing through write (a Processor's writer, which on
// SQLite shares the transaction with dialog steps).
func newInbox(write func(context.Context, func(store.StepTx) error) error, met *metrics.Metrics,
	log *slog.Logger, wake func(), maxBatch int) *Inbox {
	if maxBatch <= 0 {
		maxBatch = 512
	}
	if wake == nil {
		wake = func() {}
	}
	in := &Inbox{write: write, log: log, met: met, reqs: make(chan *appendReq, 1024), wake: wake, maxSize: maxBatch, done: make(chan struct{})}
	in.wg.Add(1)
	go in.loop()
	return in
}

// Append stores events and reports, in order, each one's sequence number and
// whether it was a duplicate. It returns after the events are committed.
func (in *Inbox) Append(ctx context.Context, events []event.Event) ([]store.AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	r := &appendReq{events: events, done: make(chan struct{})}
	in.waiting.Add(1)
	defer in.waiting.Add(-1)
	in.closeMu.RLock()
	if in.closed {
		in.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case in.reqs <- r:
		in.closeMu.RUnlock()
	case <-ctx.Done():
		in.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	// Once queued the request is committed or failed by the loop; wait for the
	// outcome even if ctx ends, so the caller never answers before knowing.
	<-r.done
	return r.res, r.err
}

// Close stops accepting appends, commits what is queued and returns. Appends after
// Close return ErrClosed.
func (in *Inbox) Close() {
	in.once.Do(func() {
		in.closeMu.Lock()
		in.closed = true
		in.closeMu.Unlock()
		close(in.done)
	})
	in.wg.Wait()
}

func (in *Inbox) loop() {
	defer in.wg.Done()
	for {
		var first *appendReq
		select {
		case first = <-in.reqs:
		case <-in.done:
			// Drain what was queued before Close.
			for {
				select {
				case r := <-in.reqs:
					in.commit([]*appendReq{r})
				default:
					return
				}
			}
		}
		batch := []*appendReq{first}
		n := len(first.events)
	gather:
		for n < in.maxSize {
			select {
			case r := <-in.reqs:
				batch = append(batch, r)
				n += len(r.events)
			default:
				break gather
			}
		}
		in.commit(batch)
	}
}

func (in *Inbox) commit(batch []*appendReq) {
	var all []event.Event
	if len(batch) == 1 {
		all = batch[0].events
	} else {
		for _, r := range batch {
			all = append(all, r.events...)
		}
	}
	// The transaction must not be cut short by one caller's deadline.
	var res []store.AppendResult
	err := in.write(context.Background(), func(tx store.StepTx) error {
		var err error
		res, err = tx.AppendEvents(all)
		return err
	})
	if err != nil {
		in.log.Error("inbox: append events", "events", len(all), "requests", len(batch), "err", err)
	} else if in.met != nil {
		in.met.InboxBatch.Observe(float64(len(all)))
	}
	off := 0
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.res = res[off : off+len(r.events)]
		}
		off += len(r.events)
		close(r.done)
	}
	if err == nil {
		if in.committed != nil {
			in.committed(all)
		}
		in.wake()
	}
}
