package processor

import (
	"context"
	"sync"

	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// Batch bounds. A step batch is kept short so that an inbox append waiting behind
// it (and the webhook waiting for that append) is not held long; appends, which
// are cheap and answer webhooks, go in batches of their own, first.
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

	mu         sync.Mutex
	urgent     []*stepReq // inbox appends: a webhook waits for each
	queue      []*stepReq // dialog steps and action outcomes
	committing bool
}

// stepReq is one step waiting to be committed with others.
type stepReq struct {
	fn   func(store.StepTx) error
	err  error
	done chan struct{}
}

func newWriter(st store.Store, met *metrics.Metrics) *writer {
	return &writer{st: st, met: met}
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
		return w.st.Step(ctx, fn)
	}
	r := &stepReq{fn: fn, done: make(chan struct{})}
	w.mu.Lock()
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
		var batch []*stepReq
		if n := min(len(w.urgent), maxAppendBatch); n > 0 {
			batch, w.urgent = w.urgent[:n:n], w.urgent[n:]
		} else if n := min(len(w.queue), maxStepBatch); n > 0 {
			batch, w.queue = w.queue[:n:n], w.queue[n:]
		} else {
			w.committing = false
			w.mu.Unlock()
			return
		}
		n := len(batch)
		w.mu.Unlock()

		fns := make([]func(store.StepTx) error, n)
		for i, r := range batch {
			fns[i] = r.fn
		}
		// The transaction must not be cut short by one caller's deadline.
		errs := w.st.Steps(context.Background(), fns)
		if w.met != nil {
			w.met.StepBatch.Observe(float64(n))
		}
		for i, r := range batch {
			r.err = errs[i]
			close(r.done)
		}
	}
}
