package processor

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// blockingStore holds every write transaction until release is closed.
type blockingStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingStore) hold() {
	b.once.Do(func() { close(b.entered) })
	<-b.release
}

func (b *blockingStore) Steps(ctx context.Context, fns []func(store.StepTx) error) []error {
	b.hold()
	return b.Store.Steps(ctx, fns)
}

func (b *blockingStore) Step(ctx context.Context, fn func(store.StepTx) error) error {
	b.hold()
	return b.Store.Step(ctx, fn)
}

// singleWriter makes a store look like PostgreSQL (false) or SQLite (true).
type singleWriter struct {
	*blockingStore
	single bool
}

func (s singleWriter) SingleWriter() bool { return s.single }

// The writer counts as stuck once it has held a write for more than the limit
// without answering it, on either kind of store, and recovers when it answers.
func TestCheckWriter(t *testing.T) {
	for _, single := range []bool{true, false} {
		t.Run(map[bool]string{true: "single writer", false: "parallel"}[single], func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
			bs := &blockingStore{Store: openTestStore(t), entered: make(chan struct{}), release: make(chan struct{})}
			met := metrics.New(nil)
			p := New(Config{Store: singleWriter{bs, single}, Metrics: met, Now: clk.Now})
			defer p.Inbox().Close()

			if err := p.CheckWriter(); err != nil {
				t.Fatalf("idle writer: %v", err)
			}
			// An hour of idleness is not a stall.
			clk.Advance(time.Hour)
			done := make(chan error, 1)
			go func() { done <- p.step(context.Background(), func(store.StepTx) error { return nil }) }()
			<-bs.entered
			if err := p.CheckWriter(); err != nil {
				t.Fatalf("a write just begun: %v", err)
			}
			clk.Advance(writerStallLimit)
			if err := p.CheckWriter(); err != nil {
				t.Fatalf("held exactly the limit: %v", err)
			}
			clk.Advance(time.Second)
			if err := p.CheckWriter(); err == nil || !strings.Contains(err.Error(), "writer stuck: no commit for 31s") {
				t.Fatalf("held past the limit: %v", err)
			}
			close(bs.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := p.CheckWriter(); err != nil {
				t.Fatalf("after the commit: %v", err)
			}
			busy := testutil.ToFloat64(met.WriterBusy)
			if single && busy < float64(writerStallLimit/time.Second) {
				t.Errorf("busy %vs, want at least the %v the batch was held", busy, writerStallLimit)
			}
			if !single && busy != 0 {
				t.Errorf("busy %vs without a single writer, want 0", busy)
			}
		})
	}
}
