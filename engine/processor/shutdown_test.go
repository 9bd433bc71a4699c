package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

func openTestStore(t *testing.T, opts ...store.Option) *store.GormStore {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "fixit.db"), slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func inboxEvent(n int) event.Event {
	return event.Event{Source: "waba", Type: "waba.message", At: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		DedupeKey: fmt.Sprintf("waba:wamid.close.%d", n), Keys: []string{"waba:79161234567"}}
}

// An Append after Close used to race the loop's exit: with room in the queue, the
// select could queue the request after the final drain, and Append then waited for
// ever (it hung fixit's shutdown when an action finished after the inbox closed).
func TestInboxAppendAfterCloseReturns(t *testing.T) {
	st := openTestStore(t)
	in := NewInbox(st, nil, slog.New(slog.DiscardHandler), nil, 0)
	ctx := context.Background()
	if _, err := in.Append(ctx, []event.Event{inboxEvent(0)}); err != nil {
		t.Fatal(err)
	}
	in.Close()
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= 500; i++ {
			if _, err := in.Append(ctx, []event.Event{inboxEvent(i)}); !errors.Is(err, ErrClosed) {
				done <- fmt.Errorf("append %d after Close: %v, want ErrClosed", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a hang, not a timing assertion
		t.Fatal("Append after Close did not return")
	}
}

// Appends racing Close each return: either committed (and then stored) or
// ErrClosed (and then not stored).
func TestInboxAppendRacingClose(t *testing.T) {
	st := openTestStore(t)
	in := NewInbox(st, nil, slog.New(slog.DiscardHandler), nil, 4)
	ctx := context.Background()
	var (
		mu        sync.Mutex
		committed = map[int64]bool{}
		refused   int
		wg        sync.WaitGroup
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				res, err := in.Append(ctx, []event.Event{inboxEvent(1000*g + i)})
				mu.Lock()
				switch {
				case errors.Is(err, ErrClosed):
					refused++
				case err != nil:
					t.Errorf("append: %v", err)
				default:
					committed[res[0].Seq] = true
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond) // let some appends commit before Close; either outcome is valid
	in.Close()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("appends racing Close did not all return")
	}
	stored, err := st.PendingEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(committed) {
		t.Errorf("%d events stored, %d appends reported committed (%d refused)", len(stored), len(committed), refused)
	}
	for _, e := range stored {
		if !committed[e.Seq] {
			t.Errorf("event %d stored but its Append did not report it", e.Seq)
		}
	}
}

// RecoverClaims releases the actions a dead process left running, and only those:
// they are due at once, keep their attempt count and say why they ran again.
func TestRecoverClaims(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	clk := func() time.Time { return now }
	st := openTestStore(t, store.WithClock(clk))
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		if err := st.Step(ctx, func(tx store.StepTx) error {
			it := &store.OutboxItem{Kind: "send", Params: []byte(fmt.Sprintf(`{"text":"%d"}`, i)), NextAt: now}
			err := tx.Enqueue(it)
			ids = append(ids, it.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The dead process claimed the first two and finished the second.
	claimed, err := st.ClaimOutbox(ctx, now, 2, 2*time.Minute)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if err := st.CompleteOutbox(ctx, ids[1], []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	p := New(Config{Store: st, Now: clk})
	t.Cleanup(p.Inbox().Close)
	n, err := p.RecoverClaims(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RecoverClaims = %d, %v; want 1 released", n, err)
	}
	items, _, err := st.ListOutbox(ctx, store.OutboxFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]struct {
		status   store.OutboxStatus
		attempts int
		code     string
	}{ids[0]: {store.OutboxPending, 1, CodeInterrupted}, ids[1]: {store.OutboxDone, 1, ""}, ids[2]: {store.OutboxPending, 0, ""}}
	for _, it := range items {
		w := want[it.ID]
		if it.Status != w.status || it.Attempts != w.attempts || it.ErrorCode != w.code {
			t.Errorf("action %d: %s, %d attempts, code %q; want %s, %d, %q", it.ID, it.Status, it.Attempts, it.ErrorCode, w.status, w.attempts, w.code)
		}
	}
	// Released now, not after the lease: the next claim takes it.
	again, err := st.ClaimOutbox(ctx, now, 10, 2*time.Minute)
	if err != nil || len(again) != 2 {
		t.Fatalf("claim after recovery: %v %v, want the released and the untouched action", again, err)
	}
	if n, err := p.RecoverClaims(ctx); err != nil || n != 2 {
		t.Fatalf("second RecoverClaims = %d, %v; want 2", n, err)
	}
}
