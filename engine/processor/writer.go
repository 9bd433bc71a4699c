package processor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// Batch bounds of one transaction: up to maxAppendBatch inbox appends, which
// answer webhooks and go first, and up to maxStepBatch steps after them. The steps
// are kept few so that an append waiting behind a batch (and the webhook waiting
// for that append) is not held long.
const (
	maxStepBatch   = 32
	maxAppendBatch = 64
)

// writer commits steps: dialog steps, inbox appends, action outcomes.
//
// On a single-writer store (SQLite) every write transaction queues for the one
// connection anyway, so the writer groups what is asked for at the same time into
// one transaction (Store.Steps), and one commit serves them all. Each caller still
// returns only after its own step is committed, or rolled back alone; a step may be
// run twice (Store.Steps says when), so it must start from the same inputs each time. Elsewhere (PostgreSQL) each step is its own transaction and
// steps run in parallel.
type writer struct {
	st  store.Store
	met *metrics.Metrics
	now func() time.Time
	// For an exclusive processor on a single-writer store: unread indexes the
	// events each step stores, binds logs the keys they bind, files remembers the
	// keys of those stored with files to fetch. Nil otherwise.
	unread *unread
	binds  *bindLog
	files  *fileKeys

	mu         sync.Mutex
	urgent     []*stepReq // inbox appends: a webhook waits for each
	queue      []*stepReq // dialog steps and action outcomes
	committing bool
	// inHand counts the writes asked for and not yet answered; progress is when
	// the last one was answered, or when the writer last went from idle to busy.
	inHand   int
	progress time.Time
}

// stepReq is one step waiting to be committed with others.
type stepReq struct {
	fn    func(store.StepTx) error
	err   error
	done  chan struct{}
	bound []string // the keys the step bound in the ordinary scope
}

// newWriter returns the writer of st; exclusive is Config.Exclusive.
func newWriter(st store.Store, met *metrics.Metrics, now func() time.Time, exclusive bool) *writer {
	w := &writer{st: st, met: met, now: now}
	if exclusive && st != nil && st.SingleWriter() {
		w.unread, w.binds, w.files = newUnread(), newBindLog(), newFileKeys()
	}
	return w
}

// writerStallLimit is how long the writer may hold writes without answering any
// before it counts as stuck: a batch commits in milliseconds, and SQLite gives up
// waiting for a lock after 10 seconds.
const writerStallLimit = 30 * time.Second

// CheckWriter reports an error when the writer is stuck: it has writes in hand and
// has answered none of them for longer than 30 seconds (a transaction that never
// ends, a database that stopped answering). The readiness probe fails on it.
func (p *Processor) CheckWriter() error {
	if d := p.w.stalled(); d > writerStallLimit {
		return fmt.Errorf("writer stuck: no commit for %s", d.Truncate(time.Second))
	}
	return nil
}

// stalled is how long the writer has had writes in hand without answering one; 0
// when it has none.
func (w *writer) stalled() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inHand == 0 {
		return 0
	}
	return max(w.now().Sub(w.progress), 0)
}

// begin and end bracket one write for stalled; holdLocked is begin under w.mu.
func (w *writer) begin() {
	w.mu.Lock()
	w.holdLocked()
	w.mu.Unlock()
}

func (w *writer) holdLocked() {
	if w.inHand == 0 {
		w.progress = w.now()
	}
	w.inHand++
}

func (w *writer) end(n int) {
	w.mu.Lock()
	w.inHand -= n
	w.progress = w.now()
	w.mu.Unlock()
}

// do runs fn in a transaction and returns fn's error (or the commit's).
func (w *writer) do(ctx context.Context, fn func(store.StepTx) error) error {
	return w.enqueue(ctx, fn, false)
}

// append is do for an inbox append: it is committed before any waiting step.
func (w *writer) append(ctx context.Context, fn func(store.StepTx) error) error {
	return w.enqueue(ctx, fn, true)
}

func (w *writer) enqueue(ctx context.Context, fn func(store.StepTx) error, urgent bool) error {
	if !w.st.SingleWriter() {
		w.begin()
		defer w.end(1)
		return w.st.Step(ctx, fn)
	}
	r := &stepReq{fn: fn, done: make(chan struct{})}
	if w.unread != nil {
		r.fn = func(tx store.StepTx) error {
			r.bound = r.bound[:0] // a batch may run a step twice
			return fn(indexingTx{StepTx: tx, w: w, bound: &r.bound})
		}
	}
	w.mu.Lock()
	w.holdLocked()
	if urgent {
		w.urgent = append(w.urgent, r)
	} else {
		w.queue = append(w.queue, r)
	}
	if !w.committing {
		w.committing = true
		go w.commit()
	}
	w.mu.Unlock()
	<-r.done
	return r.err
}

// commit commits the queued steps, a batch per transaction, until none are left;
// then it ends (the next step starts another).
func (w *writer) commit() {
	for {
		w.mu.Lock()
		a, s := min(len(w.urgent), maxAppendBatch), min(len(w.queue), maxStepBatch)
		if a+s == 0 {
			w.committing = false
			w.mu.Unlock()
			return
		}
		// Appends first, then steps, in one transaction: a commit costs about as
		// much as a batch's writes (SQLite writes every page they touched to the
		// WAL), and the appends and steps of one moment touch the same pages.
		batch := make([]*stepReq, 0, a+s)
		batch = append(append(batch, w.urgent[:a]...), w.queue[:s]...)
		w.urgent, w.queue = w.urgent[a:], w.queue[s:]
		n := len(batch)
		w.mu.Unlock()

		fns := make([]func(store.StepTx) error, n)
		for i, r := range batch {
			fns[i] = r.fn
		}
		// The transaction must not be cut short by one caller's deadline.
		start := w.now()
		errs := w.st.Steps(context.Background(), fns)
		w.end(n)
		if w.met != nil {
			w.met.StepBatch.Observe(float64(n))
			w.met.WriterBusy.Add(max(w.now().Sub(start).Seconds(), 0))
		}
		for i, r := range batch {
			if r.err = errs[i]; r.err == nil && len(r.bound) > 0 {
				w.binds.publish(r.bound)
			}
			close(r.done)
		}
	}
}
