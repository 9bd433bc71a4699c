package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
	"github.com/fixit-exchange/fixit/metrics"
)

const day = 24 * time.Hour

func TestParseKeep(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90d", 90 * day, ""},
		{" 12w ", 84 * day, ""},
		{"2160h", 90 * day, ""},
		{"7d", 7 * day, ""},
		{"168h", 7 * day, ""},
		{"6d", 0, "at least 7 days"},
		{"1h", 0, "at least 7 days"},
		{"", 0, "want days"},
		{"90", 0, "want days"},
		{"d", 0, "whole number"},
		{"-90d", 0, "whole number"},
		{"1.5w", 0, "whole number"},
		{"99999999999999d", 0, "whole number"},
		{"ninety days", 0, "want days"},
	}
	for _, c := range cases {
		got, err := ParseKeep(c.in)
		if c.err == "" && (err != nil || got != c.want) {
			t.Errorf("ParseKeep(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseKeep(%q) = %v, %v; want an error saying %q", c.in, got, err, c.err)
		}
	}
}

func FuzzParseKeep(f *testing.F) {
	for _, s := range []string{"90d", "12w", "2160h", "7d", "", "d", "1e9w", "18446744073709551615d", "1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseKeep(s)
		if err == nil && d < MinKeep {
			t.Errorf("ParseKeep(%q) = %v, below the minimum", s, d)
		}
		if err != nil && d != 0 {
			t.Errorf("ParseKeep(%q) = %v with an error", s, d)
		}
	})
}

// clock is a clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world stores n dialogs per kind, each with an event, history, a key, a timer
// and a finished action. Ended ones end at the clock's time; the clock then moves
// on by age.
type world struct {
	st  *store.GormStore
	clk *clock
	seq int
}

func (w *world) dialogs(t *testing.T, n int, status dialog.Status) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for range n {
		w.seq++
		res, err := w.st.AppendEvents(ctx, []event.Event{{Source: event.SourceWABA, Type: event.TypeWABAMessage,
			At: w.clk.now(), DedupeKey: fmt.Sprintf("w:%d", w.seq), Keys: []string{fmt.Sprintf("waba:%d", w.seq)},
			Contact: event.Contact{Channel: event.SourceWABA, ID: fmt.Sprint(w.seq)}}})
		if err != nil {
			t.Fatal(err)
		}
		seq := res[0].Seq
		d := &store.Dialog{Dialog: dialog.Dialog{Flow: "f", State: "s", Vars: map[string]any{"name": "Анна"}}}
		err = w.st.Step(ctx, func(tx store.StepTx) error {
			if err := tx.CreateDialog(d); err != nil {
				return err
			}
			if err := tx.BindKey(d.ID, fmt.Sprintf("waba:%d", w.seq)); err != nil {
				return err
			}
			if err := tx.AppendHistory(store.HistoryEntry{DialogID: d.ID, Kind: dialog.HistEvent, EventSeq: &seq}); err != nil {
				return err
			}
			if err := tx.ScheduleTimer(&store.Timer{DialogID: d.ID, State: "s", DueAt: w.clk.now().Add(time.Hour)}); err != nil {
				return err
			}
			if err := tx.Enqueue(&store.OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{}`)}); err != nil {
				return err
			}
			if status != dialog.Active {
				d.Status = status
				if err := tx.UpdateDialog(d); err != nil {
					return err
				}
			}
			return tx.MarkEvent(seq, store.EventProcessed, &d.ID, "")
		})
		if err != nil {
			t.Fatal(err)
		}
		items, err := w.st.ClaimOutbox(ctx, w.clk.now(), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if err := w.st.CompleteOutbox(ctx, it.ID, json.RawMessage(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func (w *world) live(t *testing.T, id int64) bool {
	t.Helper()
	_, err := w.st.GetDialog(context.Background(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func newWorld(t *testing.T, dsn string) *world {
	clk := &clock{t: time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)}
	st, err := store.Open(context.Background(), dsn, nil, store.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &world{st: st, clk: clk}
}

// A pass purges, batch by batch, the dialogs that ended before the cut-off and
// nothing else, counts them in the metric, and calls the file hook first.
func TestPass(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		old := w.dialogs(t, 5, dialog.Finished)
		old = append(old, w.dialogs(t, 2, dialog.Abandoned)...)
		oldLive := w.dialogs(t, 2, dialog.Active)
		oldLive = append(oldLive, w.dialogs(t, 1, dialog.Handoff)...)
		w.clk.advance(60 * day)
		recent := w.dialogs(t, 3, dialog.Finished)
		w.clk.advance(40 * day)

		met := metrics.New(nil)
		p, err := New(Config{Store: w.st, Keep: 90 * day, Batch: 3, Rest: time.Millisecond, Metrics: met, Now: w.clk.now,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := store.Purged{Dialogs: 7, Keys: 7, History: 7, Timers: 7, Outbox: 7, Events: 7, Contacts: 10}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pass purged %+v, want %+v", got, want)
		}
		for _, id := range old {
			if w.live(t, id) {
				t.Errorf("dialog %d ended 100 days ago and was kept", id)
			}
		}
		for _, id := range slices.Concat(oldLive, recent) {
			if !w.live(t, id) {
				t.Errorf("dialog %d (live, or ended 40 days ago) was purged", id)
			}
		}
		for _, k := range got.Kinds() {
			if m := testutil.ToFloat64(met.RetentionPurged.WithLabelValues(k.Kind)); m != float64(k.Count) {
				t.Errorf("fixit_retention_purged_total{kind=%q} = %v, want %d", k.Kind, m, k.Count)
			}
		}
		if again, err := p.Pass(context.Background()); err != nil || again.Total() != 0 {
			t.Errorf("a second pass purged %+v (%v), want nothing", again, err)
		}
	})
}

// Intake goes on while a pass runs: appends through the same database all commit.
func TestPassBesideIntake(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		w.dialogs(t, 40, dialog.Finished)
		w.clk.advance(100 * day)
		busy := 0
		var mu sync.Mutex
		p, err := New(Config{Store: w.st, Keep: 90 * day, Batch: 2, Rest: time.Millisecond, Now: w.clk.now,
			Busy: func() bool { mu.Lock(); defer mu.Unlock(); busy++; return busy%2 == 1 }})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := p.Pass(context.Background())
			done <- err
		}()
		appended := 0
	loop:
		for i := 0; ; i++ {
			if _, err := w.st.AppendEvents(context.Background(), []event.Event{{Source: event.SourceWABA,
				Type: event.TypeWABAMessage, At: w.clk.now(), DedupeKey: fmt.Sprintf("intake:%d", i)}}); err != nil {
				t.Fatalf("append %d during the purge: %v", i, err)
			}
			appended++
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break loop
			default:
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if busy == 0 {
			t.Error("the purge never asked whether intake was busy")
		}
		t.Logf("%d appends committed during the pass; intake asked about %d times", appended, busy)
	})
}

func TestNewNeedsStoreAndKeep(t *testing.T) {
	if _, err := New(Config{Keep: 90 * day}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := New(Config{Store: &store.GormStore{}}); err == nil {
		t.Error("New without a retention succeeded")
	}
}

// filesStore purges one batch of dialogs with a file and one of unattached rows
// with another.
type filesStore struct{ dialogsLeft int }

func (f *filesStore) EndedDialogs(context.Context, time.Time, int) ([]int64, error) {
	if f.dialogsLeft == 0 {
		return nil, nil
	}
	f.dialogsLeft--
	return []int64{1}, nil
}

func (f *filesStore) PurgeDialogs(context.Context, []int64, time.Time) (store.Purged, error) {
	return store.Purged{Dialogs: 1, Files: 1, FilePaths: []string{"ab/dialog-file"}}, nil
}

func (f *filesStore) PurgeUnattached(context.Context, time.Time, int) (store.Purged, error) {
	return store.Purged{Events: 1, Files: 1, FilePaths: []string{"cd/loose-file"}}, nil
}

// The contents of the files whose rows a purge deleted are removed after it; a
// failing removal is logged and the pass goes on.
func TestPassRemovesFiles(t *testing.T) {
	var removed []string
	p, err := New(Config{Store: &filesStore{dialogsLeft: 1}, Keep: 90 * day, Rest: time.Millisecond,
		RemoveFiles: func(paths []string) (int, error) {
			removed = append(removed, paths...)
			return len(paths), errors.New("disk hiccup")
		}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ab/dialog-file", "cd/loose-file"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if got.Files != 2 || got.FilePaths != nil {
		t.Errorf("Pass = %+v, want 2 files counted and no paths kept", got)
	}
}
