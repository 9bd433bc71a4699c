package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/engine/event"

	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// t0 is the fake clock's start.
var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's store on one database.
type env struct {
	s     *GormStore
	clock *fakeClock
	dsn   string
	pg    bool
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log lines to the test's log.
type tWriter struct{ tb testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// openStore opens dsn with the clock and closes it when the test ends.
func openStore(tb testing.TB, dsn string, clock *fakeClock, opts ...Option) *GormStore {
	tb.Helper()
	s, err := Open(context.Background(), dsn, testLogger(tb), append([]Option{WithClock(clock.Now)}, opts...)...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// eachDB runs fn once on a fresh SQLite file and once on a fresh PostgreSQL database.
func eachDB(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	dbs := []struct {
		name string
		pg   bool
		dsn  func(t *testing.T) string
	}{
		{"sqlite", false, func(t *testing.T) string { return filepath.Join(t.TempDir(), "data", "fixit.db") }},
		{"postgres", true, func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	}
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			dsn := db.dsn(t)
			fn(t, &env{s: openStore(t, dsn, clock), clock: clock, dsn: dsn, pg: db.pg})
		})
	}
}

func ctxT(t *testing.T) context.Context { return t.Context() }

// step runs fn in a step and fails the test on error.
func (e *env) step(t *testing.T, fn func(tx StepTx) error) {
	t.Helper()
	if err := e.s.Step(ctxT(t), fn); err != nil {
		t.Fatalf("Step: %v", err)
	}
}

// newDialog creates an active dialog of flow in state.
func (e *env) newDialog(t *testing.T, flow, state string) *Dialog {
	t.Helper()
	d := &Dialog{Dialog: dialog.Dialog{Flow: flow, FlowHash: "h-" + flow, State: state, Vars: map[string]any{"n": 1.0}}}
	e.step(t, func(tx StepTx) error { return tx.CreateDialog(d) })
	return d
}

// count returns the number of rows of a table matching an optional condition.
func (e *env) count(t *testing.T, table, cond string, args ...any) int64 {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if cond != "" {
		q += " WHERE " + cond
	}
	var n int64
	if err := e.s.db.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func msg(key, waID, text string, at time.Time) event.Event {
	return event.Event{
		Source: event.SourceWABA, Type: event.TypeWABAMessage, At: at, DedupeKey: key,
		Keys:    []string{event.WABAKey(testWABANumber, waID), event.PhoneKey(waID)},
		Contact: event.Contact{Channel: event.SourceWABA, ID: waID, Name: "Иван", Phone: waID},
		Text:    text,
		Data:    map[string]any{"type": "text", "n": 2.5, "nested": map[string]any{"ok": true}},
	}
}

func append1(t *testing.T, e *env, evs ...event.Event) []AppendResult {
	t.Helper()
	res, err := e.s.AppendEvents(ctxT(t), evs)
	if err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	if len(res) != len(evs) {
		t.Fatalf("AppendEvents returned %d results for %d events", len(res), len(evs))
	}
	return res
}

func TestMigrationsIdempotent(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		if got := e.count(t, "schema_migrations", ""); got != int64(len(migrations)) {
			t.Fatalf("after first Open: %d migrations recorded, want %d", got, len(migrations))
		}
		again := openStore(t, e.dsn, e.clock)
		if got := e.count(t, "schema_migrations", ""); got != int64(len(migrations)) {
			t.Fatalf("after second Open: %d migrations recorded, want %d", got, len(migrations))
		}
		if err := again.Ping(ctxT(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	clock := &fakeClock{now: t0}
	const replicas = 4
	var wg sync.WaitGroup
	stores := make([]*GormStore, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			stores[i], errs[i] = Open(ctxT(t), dsn, testLogger(t), WithClock(clock.Now))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	var rows []struct {
		Version int `gorm:"column:version"`
		N       int `gorm:"column:n"`
	}
	if err := stores[0].db.Raw(`SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version ORDER BY version`).
		Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(migrations) {
		t.Fatalf("recorded versions %v, want %d", rows, len(migrations))
	}
	for _, r := range rows {
		if r.N != 1 {
			t.Errorf("migration %d recorded %d times", r.Version, r.N)
		}
	}
}

// TestSchemaGolden pins the migrated schema: a change here without a new migration
// means an applied migration was edited.
func TestSchemaGolden(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		var lines []string
		if e.pg {
			var cols []struct {
				Table, Column, Type, Nullable string
			}
			if err := e.s.db.Raw(`SELECT table_name AS "table", column_name AS "column", data_type AS "type",
				is_nullable AS "nullable" FROM information_schema.columns WHERE table_schema = 'public'
				ORDER BY table_name, ordinal_position`).Scan(&cols).Error; err != nil {
				t.Fatal(err)
			}
			for _, c := range cols {
				lines = append(lines, fmt.Sprintf("%s.%s %s nullable=%s", c.Table, c.Column, c.Type, c.Nullable))
			}
			var idx []struct{ Def string }
			if err := e.s.db.Raw(`SELECT indexdef AS def FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`).
				Scan(&idx).Error; err != nil {
				t.Fatal(err)
			}
			for _, i := range idx {
				lines = append(lines, i.Def)
			}
		} else {
			var defs []string
			if err := e.s.db.Raw(`SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
				ORDER BY type DESC, name`).Scan(&defs).Error; err != nil {
				t.Fatal(err)
			}
			for _, d := range defs {
				lines = append(lines, strings.Join(strings.Fields(d), " "))
			}
		}
		got := strings.Join(lines, "\n") + "\n"
		golden := filepath.Join("testdata", "schema_"+map[bool]string{false: "sqlite", true: "postgres"}[e.pg]+".golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden file (run with -update to create it): %v", err)
		}
		if got != string(want) {
			t.Errorf("schema differs from %s (run with -update if intended):\n%s", golden, got)
		}
	})
}

func TestAppendEventsDedupe(t *testing.T) {
	at := t0.Add(-time.Minute)
	cases := []struct {
		name    string
		batches [][]string // dedupe keys; "" means none
		dup     [][]bool
	}{
		{"distinct", [][]string{{"a", "b", "c"}}, [][]bool{{false, false, false}}},
		{"same key twice in a batch", [][]string{{"a", "b", "a", "a"}}, [][]bool{{false, false, true, true}}},
		{"across batches", [][]string{{"a", "b"}, {"c", "a"}, {"b"}}, [][]bool{{false, false}, {false, true}, {true}}},
		{"missing keys never collide", [][]string{{"", ""}, {""}}, [][]bool{{false, false}, {false}}},
		{"empty batch", [][]string{{}}, [][]bool{{}}},
	}
	eachDB(t, func(t *testing.T, e *env) {
		for ci, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				prefix := fmt.Sprintf("c%d:", ci)
				seqOf := map[string]int64{}
				var lastNew int64
				for bi, keys := range tc.batches {
					evs := make([]event.Event, len(keys))
					for i, k := range keys {
						if k != "" {
							k = prefix + k
						}
						evs[i] = msg(k, "79161234567", "hi "+k, at)
					}
					res, err := e.s.AppendEvents(ctxT(t), evs)
					if err != nil {
						t.Fatalf("batch %d: %v", bi, err)
					}
					if len(res) != len(keys) {
						t.Fatalf("batch %d: %d results, want %d", bi, len(res), len(keys))
					}
					for i, r := range res {
						k := keys[i]
						if r.Duplicate != tc.dup[bi][i] {
							t.Errorf("batch %d event %d (%q): Duplicate = %v, want %v", bi, i, k, r.Duplicate, tc.dup[bi][i])
						}
						if !r.Duplicate {
							if r.Seq <= lastNew {
								t.Errorf("batch %d event %d: seq %d not after %d", bi, i, r.Seq, lastNew)
							}
							lastNew = r.Seq
						}
						if k == "" {
							continue
						}
						if prev, ok := seqOf[k]; ok && prev != r.Seq {
							t.Errorf("key %q: seq %d, first stored as %d", k, r.Seq, prev)
						}
						seqOf[k] = r.Seq
					}
				}
			})
		}
	})
}

func TestAppendEventsRoundTrip(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		in := msg("wamid.1", "79161234567", "Здравствуйте 👋", time.Date(2025, 2, 28, 9, 30, 15, 123456789, time.FixedZone("MSK", 3*3600)))
		res := append1(t, e, in)
		got, err := e.s.GetEvent(ctxT(t), res[0].Seq)
		if err != nil {
			t.Fatal(err)
		}
		want := Event{Event: in, Seq: res[0].Seq, Status: EventPending, ReceivedAt: t0}
		want.ID = fmt.Sprint(res[0].Seq)
		want.At = in.At.UTC().Truncate(time.Microsecond)
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetEvent:\n got %+v\nwant %+v", *got, want)
		}
		if _, err := e.s.GetEvent(ctxT(t), res[0].Seq+100); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetEvent of a missing seq: %v, want ErrNotFound", err)
		}
		res = append1(t, e, event.Event{Source: event.SourceAction, Type: event.TypeActionDone})
		ev, err := e.s.GetEvent(ctxT(t), res[0].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ev.DedupeKey, "auto:") || ev.Keys == nil || ev.Data == nil {
			t.Errorf("event without key/keys/data stored as %+v", ev)
		}
	})
}

func TestPendingEventsOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		var seqs []int64
		for _, r := range append1(t, e, msg("a", "1", "", t0), msg("b", "1", "", t0), msg("c", "1", "", t0)) {
			seqs = append(seqs, r.Seq)
		}
		for _, r := range append1(t, e, msg("d", "1", "", t0), msg("e", "1", "", t0)) {
			seqs = append(seqs, r.Seq)
		}
		e.step(t, func(tx StepTx) error { return tx.MarkEvent(seqs[1], EventUnrouted, nil, "no flow starts on it") })

		cases := []struct {
			after int64
			limit int
			want  []int64
		}{
			{0, 10, []int64{seqs[0], seqs[2], seqs[3], seqs[4]}},
			{seqs[0], 10, []int64{seqs[2], seqs[3], seqs[4]}},
			{0, 2, []int64{seqs[0], seqs[2]}},
			{seqs[4], 10, nil},
		}
		for _, c := range cases {
			evs, err := e.s.PendingEvents(ctxT(t), c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, ev := range evs {
				got = append(got, ev.Seq)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("PendingEvents(%d, %d) = %v, want %v", c.after, c.limit, got, c.want)
			}
		}
		ev, err := e.s.GetEvent(ctxT(t), seqs[1])
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != EventUnrouted || ev.Attempts != 1 || ev.Error != "no flow starts on it" {
			t.Errorf("marked event = %+v", ev)
		}
		if err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.MarkEvent(seqs[4]+1, EventProcessed, nil, "") }); !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkEvent of a missing seq: %v, want ErrNotFound", err)
		}
		if err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.MarkEvent(seqs[0], "done", nil, "") }); err == nil {
			t.Error("MarkEvent accepted an unknown status")
		}
	})
}

func TestKeyBinding(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d1, d2, d3 := e.newDialog(t, "f", "s"), e.newDialog(t, "f", "s"), e.newDialog(t, "f", "s")
		bind := func(d *Dialog, key string) error {
			return e.s.Step(ctxT(t), func(tx StepTx) error { return tx.BindKey(d.ID, key) })
		}
		find := func(keys ...string) int64 {
			t.Helper()
			d, err := e.s.FindDialogByKeys(ctxT(t), keys)
			if err != nil {
				t.Fatalf("FindDialogByKeys(%v): %v", keys, err)
			}
			// Routing reads the same dialog, its id and channel only.
			r, err := e.s.RouteKeys(ctxT(t), keys)
			if err != nil {
				t.Fatalf("RouteKeys(%v): %v", keys, err)
			}
			if (d == nil) != (r == nil) || (d != nil && (r.ID != d.ID || r.Channel != d.Channel || r.BusinessNumber != d.BusinessNumber)) {
				t.Fatalf("RouteKeys(%v) = %+v, FindDialogByKeys = %+v", keys, r, d)
			}
			if d == nil {
				return 0
			}
			return d.ID
		}
		end := func(d *Dialog, status dialog.Status) {
			t.Helper()
			e.step(t, func(tx StepTx) error {
				cur, err := tx.LockDialog(d.ID)
				if err != nil {
					return err
				}
				cur.Status = status
				return tx.UpdateDialog(cur)
			})
		}

		steps := []struct {
			name    string
			do      func() error
			wantErr error
			find    []string
			found   int64
		}{
			{"bind k to d1", func() error { return bind(d1, "k") }, nil, []string{"k"}, d1.ID},
			{"bind again is a no-op", func() error { return bind(d1, "k") }, nil, []string{"k"}, d1.ID},
			{"d2 cannot take k", func() error { return bind(d2, "k") }, ErrKeyTaken, []string{"k"}, d1.ID},
			{"handoff keeps keys", func() error { end(d1, dialog.Handoff); return nil }, nil, []string{"k"}, d1.ID},
			{"empty key refused", func() error { return bind(d1, "") }, errAny, nil, 0},
			{"ending d1 releases k", func() error { end(d1, dialog.Finished); return nil }, nil, []string{"k"}, 0},
			{"d2 takes k", func() error { return bind(d2, "k") }, nil, []string{"k"}, d2.ID},
			{"d3 binds m", func() error { return bind(d3, "m") }, nil, []string{"m"}, d3.ID},
			{"first listed key wins", nil, nil, []string{"m", "k"}, d3.ID},
			{"order matters", nil, nil, []string{"nobody", "k", "m"}, d2.ID},
			{"no keys", nil, nil, []string{}, 0},
			{"release d3", func() error {
				return e.s.Step(ctxT(t), func(tx StepTx) error { return tx.ReleaseKeys(d3.ID) })
			}, nil, []string{"m", "k"}, d2.ID},
		}
		for _, st := range steps {
			if st.do != nil {
				err := st.do()
				switch {
				case st.wantErr == errAny && err == nil:
					t.Errorf("%s: no error, want one", st.name)
				case st.wantErr != errAny && !errors.Is(err, st.wantErr):
					t.Errorf("%s: error %v, want %v", st.name, err, st.wantErr)
				}
			}
			if st.find != nil {
				if got := find(st.find...); got != st.found {
					t.Errorf("%s: FindDialogByKeys(%v) = %d, want %d", st.name, st.find, got, st.found)
				}
			}
		}
		keys, err := e.s.DialogKeys(ctxT(t), d1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].Key != "k" || keys[0].Active || keys[0].CreatedAt != t0 {
			t.Errorf("DialogKeys(d1) = %+v, want k inactive", keys)
		}
		// The admin filter finds a key's past dialogs too.
		list, _, err := e.s.ListDialogs(ctxT(t), DialogFilter{Key: "k"}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if got := dialogIDs(list); !slices.Equal(got, []int64{d2.ID, d1.ID}) {
			t.Errorf("ListDialogs(key k) = %v, want [%d %d]", got, d2.ID, d1.ID)
		}
	})
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func dialogIDs(ds []Dialog) []int64 {
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func TestOptimisticConflict(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		stale := *d
		e.clock.Advance(time.Second)
		// Every column round-trips, including the handoff list and the state entry time.
		d.State, d.Vars = "b", map[string]any{"name": "Анна"}
		d.HandoffUntil, d.EnteredAt = []string{"okdesk.new_ticket_status"}, t0.Add(time.Second)
		e.step(t, func(tx StepTx) error { return tx.UpdateDialog(d) })
		if d.Revision != 2 || !d.UpdatedAt.Equal(t0.Add(time.Second)) {
			t.Errorf("after update: revision %d, updated %v", d.Revision, d.UpdatedAt)
		}
		stale.State = "c"
		err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.UpdateDialog(&stale) })
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("stale update: %v, want ErrConflict", err)
		}
		got, err := e.s.GetDialog(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, *d) {
			t.Errorf("GetDialog:\n got %+v\nwant %+v", *got, *d)
		}
		if _, err := e.s.GetDialog(ctxT(t), d.ID+1000); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetDialog of a missing id: %v, want ErrNotFound", err)
		}
	})
}

func TestStepRollback(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		seq := append1(t, e, msg("m1", "1", "", t0))[0].Seq
		boom := errors.New("boom")
		err := e.s.Step(ctxT(t), func(tx StepTx) error {
			d := &Dialog{Dialog: dialog.Dialog{Flow: "f", State: "a"}}
			if err := tx.CreateDialog(d); err != nil {
				return err
			}
			if err := tx.BindKey(d.ID, "k"); err != nil {
				return err
			}
			if err := tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistEvent, EventSeq: &seq}); err != nil {
				return err
			}
			if err := tx.ScheduleTimer(&Timer{DialogID: d.ID, State: "a", DueAt: t0.Add(time.Hour)}); err != nil {
				return err
			}
			if err := tx.Enqueue(&OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{"text":"hi"}`)}); err != nil {
				return err
			}
			if err := tx.MarkEvent(seq, EventProcessed, &d.ID, ""); err != nil {
				return err
			}
			if err := tx.SaveFlowVersion(FlowVersion{Hash: "h", Flow: "f", Source: "flow: f"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Step: %v, want the callback's error", err)
		}
		for _, table := range []string{"dialogs", "dialog_keys", "history", "timers", "outbox", "flow_versions"} {
			if n := e.count(t, table, ""); n != 0 {
				t.Errorf("%s has %d rows after rollback", table, n)
			}
		}
		ev, err := e.s.GetEvent(ctxT(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != EventPending || ev.Attempts != 0 || ev.DialogID != nil {
			t.Errorf("event after rollback: %+v", ev)
		}
	})
}

func TestStepCommitsHistory(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		seq := append1(t, e, msg("m1", "1", "", t0))[0].Seq
		d := e.newDialog(t, "f", "a")
		entries := []HistoryEntry{
			{DialogID: d.ID, Kind: dialog.HistEvent, EventSeq: &seq, Detail: json.RawMessage(`{"type":"waba.message"}`)},
			{DialogID: d.ID, Kind: dialog.HistGuard, Detail: json.RawMessage(`{"when":"true","result":true}`)},
			{DialogID: d.ID, Kind: dialog.HistTransition, FromState: "a", ToState: "b", At: t0.Add(time.Second)},
		}
		e.step(t, func(tx StepTx) error { return tx.AppendHistory(entries...) })
		got, err := e.s.DialogHistory(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(entries) {
			t.Fatalf("DialogHistory: %d entries, want %d", len(got), len(entries))
		}
		for i, h := range got {
			want := entries[i]
			want.ID = h.ID
			if want.At.IsZero() {
				want.At = t0
			}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("entry %d:\n got %+v\nwant %+v", i, h, want)
			}
			if i > 0 && h.ID <= got[i-1].ID {
				t.Errorf("history ids out of order: %d after %d", h.ID, got[i-1].ID)
			}
		}
		bad := e.s.Step(ctxT(t), func(tx StepTx) error {
			return tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistLog, Detail: json.RawMessage(`{not json`)})
		})
		if bad == nil {
			t.Error("AppendHistory accepted invalid JSON detail")
		}
	})
}

func TestTimers(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		other := e.newDialog(t, "f", "a")
		timers := []*Timer{
			{DialogID: d.ID, State: "a", Name: "1m", DueAt: t0.Add(time.Minute)},
			{DialogID: d.ID, State: "b", Name: "2m", DueAt: t0.Add(2 * time.Minute)},
			{DialogID: d.ID, State: "a", Name: "3m", DueAt: t0.Add(3 * time.Minute)},
			{DialogID: other.ID, State: "a", Name: "4m", DueAt: t0.Add(4 * time.Minute)},
		}
		e.step(t, func(tx StepTx) error {
			for _, tm := range timers {
				if err := tx.ScheduleTimer(tm); err != nil {
					return err
				}
			}
			return nil
		})
		due := func(at time.Duration) []string {
			t.Helper()
			ts, err := e.s.DueTimers(ctxT(t), t0.Add(at), 10)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tm := range ts {
				names = append(names, tm.Name)
			}
			return names
		}
		fire := func(tm *Timer) bool {
			t.Helper()
			var fired bool
			e.step(t, func(tx StepTx) error {
				var err error
				fired, err = tx.FireTimer(tm.ID)
				return err
			})
			return fired
		}
		if got := due(0); got != nil {
			t.Errorf("due at start: %v", got)
		}
		if got := due(time.Minute); !slices.Equal(got, []string{"1m"}) {
			t.Errorf("due at +1m (inclusive): %v", got)
		}
		if got := due(150 * time.Second); !slices.Equal(got, []string{"1m", "2m"}) {
			t.Errorf("due at +2m30s: %v", got)
		}
		e.step(t, func(tx StepTx) error { return tx.CancelTimers(d.ID, "a") })
		if got, want := timerStatuses(t, e, d.ID), []TimerStatus{TimerCancelled, TimerPending, TimerCancelled}; !slices.Equal(got, want) {
			t.Errorf("after CancelTimers(d, a): statuses %v, want %v", got, want)
		}
		if !fire(timers[1]) {
			t.Error("first FireTimer of a pending timer returned false")
		}
		if fire(timers[1]) {
			t.Error("second FireTimer of the same timer returned true")
		}
		if fire(timers[0]) {
			t.Error("FireTimer of a cancelled timer returned true")
		}
		if got := due(time.Hour); !slices.Equal(got, []string{"4m"}) {
			t.Errorf("due at +1h: %v", got)
		}
		// Ending a dialog cancels what it still has pending.
		e.step(t, func(tx StepTx) error {
			cur, err := tx.LockDialog(other.ID)
			if err != nil {
				return err
			}
			cur.Status = dialog.Abandoned
			return tx.UpdateDialog(cur)
		})
		if got := due(time.Hour); got != nil {
			t.Errorf("due after the dialog ended: %v", got)
		}
		if got, want := timerStatuses(t, e, d.ID), []TimerStatus{TimerCancelled, TimerFired, TimerCancelled}; !slices.Equal(got, want) {
			t.Errorf("DialogTimers statuses %v, want %v", got, want)
		}
	})
}

// timerStatuses returns the statuses of a dialog's timers, oldest first.
func timerStatuses(t *testing.T, e *env, dialogID int64) []TimerStatus {
	t.Helper()
	list, err := e.s.DialogTimers(ctxT(t), dialogID)
	if err != nil {
		t.Fatal(err)
	}
	var states []TimerStatus
	for _, tm := range list {
		states = append(states, tm.Status)
	}
	return states
}

func TestOutboxLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		a := &OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{"text":"a"}`)}
		b := &OutboxItem{Kind: "okdesk.create_issue", Params: json.RawMessage(`{"title":"b"}`), NextAt: t0.Add(time.Minute)}
		e.step(t, func(tx StepTx) error {
			if err := tx.Enqueue(a); err != nil {
				return err
			}
			return tx.Enqueue(b)
		})
		const lease = 30 * time.Second
		claim := func(at time.Duration) []OutboxItem {
			t.Helper()
			items, err := e.s.ClaimOutbox(ctxT(t), t0.Add(at), 10, lease)
			if err != nil {
				t.Fatal(err)
			}
			return items
		}
		ids := func(items []OutboxItem) []int64 {
			var out []int64
			for _, it := range items {
				out = append(out, it.ID)
			}
			return out
		}

		got := claim(0)
		if !slices.Equal(ids(got), []int64{a.ID}) {
			t.Fatalf("first claim: %v, want [%d]", ids(got), a.ID)
		}
		if it := got[0]; it.Status != OutboxRunning || it.Attempts != 1 || !it.LockedUntil.Equal(t0.Add(lease)) ||
			string(it.Params) != `{"text":"a"}` || it.DialogID == nil || *it.DialogID != d.ID {
			t.Errorf("claimed item: %+v", it)
		}
		if got := claim(10 * time.Second); len(got) != 0 {
			t.Errorf("claim during the lease: %v", ids(got))
		}
		got = claim(lease + time.Second) // the first worker died
		if !slices.Equal(ids(got), []int64{a.ID}) || got[0].Attempts != 2 {
			t.Fatalf("claim after the lease expired: %+v", got)
		}
		if err := e.s.RetryOutbox(ctxT(t), a.ID, t0.Add(5*time.Minute), "http_503", "upstream unavailable"); err != nil {
			t.Fatal(err)
		}
		got = claim(2 * time.Minute)
		if !slices.Equal(ids(got), []int64{b.ID}) {
			t.Fatalf("claim at +2m: %v, want [%d]", ids(got), b.ID)
		}
		if err := e.s.CompleteOutbox(ctxT(t), b.ID, json.RawMessage(`{"id":1542}`)); err != nil {
			t.Fatal(err)
		}
		errCases := []struct {
			name string
			err  error
			want error
		}{
			{"complete twice", e.s.CompleteOutbox(ctxT(t), b.ID, nil), ErrConflict},
			{"complete missing", e.s.CompleteOutbox(ctxT(t), 9999, nil), ErrNotFound},
			{"retry pending", e.s.RetryOutbox(ctxT(t), a.ID, t0, "", ""), ErrConflict},
			{"fail as done", e.s.FailOutbox(ctxT(t), a.ID, OutboxDone, "", ""), errAny},
			{"bad result", e.s.CompleteOutbox(ctxT(t), a.ID, json.RawMessage(`{`)), errAny},
		}
		for _, c := range errCases {
			if c.want == errAny && c.err == nil || c.want != errAny && !errors.Is(c.err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
			}
		}
		got = claim(6 * time.Minute)
		if !slices.Equal(ids(got), []int64{a.ID}) || got[0].Attempts != 3 || got[0].ErrorCode != "http_503" {
			t.Fatalf("claim of the retried item: %+v", got)
		}
		if err := e.s.FailOutbox(ctxT(t), a.ID, OutboxDead, "http_503", "gave up after 3 attempts"); err != nil {
			t.Fatal(err)
		}
		if got := claim(time.Hour); len(got) != 0 {
			t.Errorf("claim after all ended: %v", ids(got))
		}
		cases := []struct {
			status OutboxStatus
			want   []int64
		}{
			{OutboxDead, []int64{a.ID}},
			{OutboxDone, []int64{b.ID}},
			{OutboxPending, nil},
			{"", []int64{b.ID, a.ID}},
		}
		for _, c := range cases {
			items, next, err := e.s.ListOutbox(ctxT(t), OutboxFilter{Status: c.status}, Page{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(items), c.want) || next != "" {
				t.Errorf("ListOutbox(%q) = %v next %q, want %v", c.status, ids(items), next, c.want)
			}
		}
		items, _, _ := e.s.ListOutbox(ctxT(t), OutboxFilter{Status: OutboxDone}, Page{})
		if it := items[0]; string(it.Result) != `{"id":1542}` || !it.LockedUntil.IsZero() {
			t.Errorf("done item: %+v", it)
		}
	})
}

func TestConcurrentClaimers(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const items, workers = 200, 8
		e.step(t, func(tx StepTx) error {
			for i := range items {
				if err := tx.Enqueue(&OutboxItem{Kind: "send", Params: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
					return err
				}
			}
			return nil
		})
		var (
			mu     sync.Mutex
			claims = map[int64]int{}
			wg     sync.WaitGroup
		)
		for range workers {
			wg.Go(func() {
				for {
					got, err := e.s.ClaimOutbox(context.Background(), t0, 5, time.Hour)
					if err != nil {
						t.Errorf("ClaimOutbox: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, it := range got {
						claims[it.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claims) != items {
			t.Errorf("%d distinct items claimed, want %d", len(claims), items)
		}
		for id, n := range claims {
			if n != 1 {
				t.Errorf("item %d claimed %d times", id, n)
			}
		}
	})
}

func TestPagination(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		var all []int64 // newest first
		for i := range 25 {
			d := e.newDialog(t, []string{"a", "b"}[i%2], "s")
			all = append([]int64{d.ID}, all...)
		}
		var flowA []int64
		for _, id := range all {
			if id%2 == all[len(all)-1]%2 {
				flowA = append(flowA, id)
			}
		}
		cases := []struct {
			name   string
			filter DialogFilter
			limit  int
			want   []int64
			pages  int
		}{
			{"all in pages of 10", DialogFilter{}, 10, all, 3},
			{"exact multiple", DialogFilter{}, 5, all, 5},
			{"default limit", DialogFilter{}, 0, all, 1},
			{"flow filter", DialogFilter{Flow: "a"}, 4, flowA, 4},
			{"status filter", DialogFilter{Status: dialog.Active, State: "s"}, 100, all, 1},
			{"no match", DialogFilter{Status: dialog.Failed}, 10, nil, 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var got []int64
				cursor, pages := "", 0
				for {
					ds, next, err := e.s.ListDialogs(ctxT(t), c.filter, Page{Limit: c.limit, Cursor: cursor})
					if err != nil {
						t.Fatal(err)
					}
					pages++
					got = append(got, dialogIDs(ds)...)
					if next == "" {
						break
					}
					if pages > 100 {
						t.Fatal("pagination does not end")
					}
					cursor = next
				}
				if !slices.Equal(got, c.want) || pages != c.pages {
					t.Errorf("got %v in %d pages, want %v in %d", got, pages, c.want, c.pages)
				}
			})
		}

		evCursor := encodeCursor("events", 5)
		for _, bad := range []string{"!!!", "ZGlhbG9nczp4", evCursor, encodeCursor("dialogs", 0)} {
			if _, _, err := e.s.ListDialogs(ctxT(t), DialogFilter{}, Page{Cursor: bad}); !errors.Is(err, ErrBadCursor) {
				t.Errorf("ListDialogs(cursor %q): %v, want ErrBadCursor", bad, err)
			}
		}

		append1(t, e, msg("w1", "1", "", t0), event.Event{Source: event.SourceOkdesk, Type: "okdesk.new_comment", DedupeKey: "o1"},
			msg("w2", "1", "", t0))
		evCases := []struct {
			filter EventFilter
			want   []string
		}{
			{EventFilter{}, []string{"w2", "o1", "w1"}},
			{EventFilter{Source: event.SourceWABA}, []string{"w2", "w1"}},
			{EventFilter{Source: event.SourceOkdesk, Status: EventPending}, []string{"o1"}},
			{EventFilter{Status: EventProcessed}, nil},
		}
		for _, c := range evCases {
			var got []string
			cursor := ""
			for {
				evs, next, err := e.s.ListEvents(ctxT(t), c.filter, Page{Limit: 1, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					got = append(got, ev.DedupeKey)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("ListEvents(%+v) = %v, want %v", c.filter, got, c.want)
			}
		}
	})
}

func TestNULAndInvalidUTF8(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const dirty = "a\x00b\xffc"
		const clean = "a\uFFFDb\uFFFDc"
		in := msg("nul\x00key", "7\x00", dirty, t0)
		in.Data["field"] = "x\x00y"
		in.Keys = append(in.Keys, "k\x00")
		res := append1(t, e, in)
		got, err := e.s.GetEvent(ctxT(t), res[0].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != clean || got.DedupeKey != "nul\uFFFDkey" {
			t.Errorf("text %q, dedupe key %q", got.Text, got.DedupeKey)
		}
		// JSON escapes NUL, so JSON fields keep it exactly.
		if got.Data["field"] != "x\x00y" || got.Contact.ID != "7\x00" || !slices.Contains(got.Keys, "k\x00") {
			t.Errorf("JSON fields changed: %+v", got)
		}
		if again := append1(t, e, in); !again[0].Duplicate || again[0].Seq != res[0].Seq {
			t.Errorf("re-appending a NUL-keyed event: %+v", again[0])
		}

		d := &Dialog{Dialog: dialog.Dialog{Flow: "f\x00", State: dirty, Vars: map[string]any{"v": dirty}}}
		e.step(t, func(tx StepTx) error {
			if err := tx.CreateDialog(d); err != nil {
				return err
			}
			if err := tx.BindKey(d.ID, "phone:\x00"); err != nil {
				return err
			}
			if err := tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistLog, FromState: dirty}); err != nil {
				return err
			}
			return tx.MarkEvent(res[0].Seq, EventFailed, &d.ID, dirty)
		})
		gd, err := e.s.GetDialog(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if gd.Flow != "f\uFFFD" || gd.State != clean || gd.Vars["v"] != strings.ToValidUTF8(dirty, "\uFFFD") {
			t.Errorf("dialog: %+v", gd)
		}
		if found, err := e.s.FindDialogByKeys(ctxT(t), []string{"phone:\x00"}); err != nil || found == nil || found.ID != d.ID {
			t.Errorf("FindDialogByKeys with a NUL key: %v, %v", found, err)
		}
		got, _ = e.s.GetEvent(ctxT(t), res[0].Seq)
		if got.Error != clean {
			t.Errorf("event error %q", got.Error)
		}
	})
}

func TestLastInbound(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		const wa = "79161234567"
		tg := func(key string, at time.Time) event.Event {
			return event.Event{Source: event.SourceTelegram, Type: event.TypeTelegramMessage, DedupeKey: key, At: at,
				Contact: event.Contact{Channel: event.SourceTelegram, ID: "5"}}
		}
		status := msg("st1", wa, "", t0.Add(-time.Second))
		status.Type = event.TypeWABAStatus
		cases := []struct {
			name    string
			events  []event.Event
			channel string
			id      string
			want    time.Time
		}{
			{"none yet", nil, "waba", wa, time.Time{}},
			{"first message", []event.Event{msg("m1", wa, "", t0.Add(-time.Hour))}, "waba", wa, t0.Add(-time.Hour)},
			{"older message does not move it back", []event.Event{msg("m0", wa, "", t0.Add(-2*time.Hour))}, "waba", wa, t0.Add(-time.Hour)},
			{"newer message moves it", []event.Event{msg("m2", wa, "", t0.Add(-time.Minute))}, "waba", wa, t0.Add(-time.Minute)},
			{"statuses are not inbound", []event.Event{status}, "waba", wa, t0.Add(-time.Minute)},
			{"a batch keeps the newest", []event.Event{msg("m4", wa, "", t0.Add(-20*time.Second)), msg("m3", wa, "", t0.Add(-30*time.Second))}, "waba", wa, t0.Add(-20 * time.Second)},
			{"future is clamped to now", []event.Event{msg("m5", wa, "", t0.Add(time.Hour))}, "waba", wa, t0},
			{"telegram", []event.Event{tg("t1", t0.Add(-time.Minute))}, "telegram", "5", t0.Add(-time.Minute)},
			{"other channel untouched", nil, "telegram", wa, time.Time{}},
		}
		for _, c := range cases {
			if len(c.events) > 0 {
				append1(t, e, c.events...)
			}
			got, err := e.s.LastInbound(ctxT(t), c.channel, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(c.want) {
				t.Errorf("%s: LastInbound = %v, want %v", c.name, got, c.want)
			}
		}
	})
}

func TestFlowVersionsAndCounts(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		v := FlowVersion{Hash: "sha256:abc", Flow: "lead", File: "flows.d/lead.yaml", Source: "flow: lead\n"}
		if err := e.s.SaveFlowVersion(ctxT(t), v); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		changed := v
		changed.Source = "something else"
		e.step(t, func(tx StepTx) error { return tx.SaveFlowVersion(changed) })
		got, err := e.s.GetFlowVersion(ctxT(t), v.Hash)
		if err != nil {
			t.Fatal(err)
		}
		v.CreatedAt = t0
		if *got != v {
			t.Errorf("GetFlowVersion = %+v, want the first save %+v", *got, v)
		}
		if _, err := e.s.GetFlowVersion(ctxT(t), "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetFlowVersion(missing): %v", err)
		}

		e.newDialog(t, "lead", "ask_name")
		e.newDialog(t, "lead", "ask_name")
		d := e.newDialog(t, "lead", "done")
		d.Status = dialog.Finished
		e.step(t, func(tx StepTx) error { return tx.UpdateDialog(d) })
		e.newDialog(t, "pay", "wait")
		counts, err := e.s.Counts(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		want := []DialogCount{
			{"lead", "ask_name", dialog.Active, 2},
			{"lead", "done", dialog.Finished, 1},
			{"pay", "wait", dialog.Active, 1},
		}
		if !slices.Equal(counts, want) {
			t.Errorf("Counts = %+v, want %+v", counts, want)
		}
	})
}

func TestSQLiteDSN(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		in, want string
		err      bool
	}{
		{filepath.Join(dir, "a", "b.db"), "file:" + filepath.Join(dir, "a", "b.db") + "?" + sqlitePragmas, false},
		{filepath.Join(dir, "c.db") + "?_pragma=cache_size(-20000)", "file:" + filepath.Join(dir, "c.db") + "?" + sqlitePragmas + "&_pragma=cache_size(-20000)", false},
		{filepath.Join(dir, "odd #1%.db"), "file:" + filepath.Join(dir, "odd%20%231%25.db") + "?" + sqlitePragmas, false},
		{"", "", true},
	}
	for _, c := range cases {
		got, err := sqliteDSN(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("sqliteDSN(%q) = %q, %v; want %q (error %v)", c.in, got, err, c.want, c.err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err != nil {
		t.Errorf("directory not created: %v", err)
	}
}

// TestSQLitePragmasOnConnection: every pragma of the DSN is in force on the
// writer and on each reader, and only the readers are read-only.
func TestSQLitePragmasOnConnection(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "p.db"), clock)
	ctx := context.Background()
	check := func(name string, db *sql.DB, queryOnly string) {
		t.Helper()
		// Hold every connection of the pool at once, so that each is asked.
		n := db.Stats().MaxOpenConnections
		conns := make([]*sql.Conn, n)
		for i := range conns {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		cases := []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"synchronous", "1"},
			{"busy_timeout", "10000"},
			{"temp_store", "2"},
			{"wal_autocheckpoint", "10000"},
			{"cache_size", "-8192"},
			{"query_only", queryOnly},
		}
		for i, c := range conns {
			for _, p := range cases {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != p.want {
					t.Errorf("%s connection %d: PRAGMA %s = %s, want %s", name, i+1, p.pragma, got, p.want)
				}
			}
		}
	}
	check("writer", s.sqlDB, "0")
	check("reader", s.rsqlDB, "1")
	if n := s.sqlDB.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", n)
	}
	if n := s.rsqlDB.Stats().MaxOpenConnections; n < 2 {
		t.Errorf("readers' MaxOpenConnections = %d, want several", n)
	}
}

// TestSQLiteTimeText: the driver writes a time as sqliteTimeLayout's text, the
// layout the stored rows have always had, and reads that text back as the same time.
func TestSQLiteTimeText(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "time.db"), &fakeClock{now: t0})
	cases := []struct {
		in   time.Time
		text string
	}{
		{time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC), "2026-11-29 09:30:00+00:00"},
		{time.Date(2026, 11, 29, 9, 30, 0, 123456789, time.UTC), "2026-11-29 09:30:00.123456+00:00"},
		{time.Date(2026, 11, 29, 9, 30, 0, 120000000, time.UTC), "2026-11-29 09:30:00.12+00:00"},
		{time.Date(2026, 11, 29, 12, 30, 0, 1000, time.FixedZone("MSK", 3*3600)), "2026-11-29 09:30:00.000001+00:00"},
	}
	for i, c := range cases {
		at := dbTime(c.in)
		if want := at.Format(sqliteTimeLayout); want != c.text {
			t.Fatalf("case %d: the layout gives %q, the case expects %q", i, want, c.text)
		}
		id := fmt.Sprint(i)
		if err := s.db.Exec(`INSERT INTO contacts (channel, contact_id, last_inbound_at) VALUES ('t', ?, ?)`, id, at).Error; err != nil {
			t.Fatal(err)
		}
		var row struct {
			Text string    `gorm:"column:text"`
			At   time.Time `gorm:"column:last_inbound_at"`
		}
		if err := s.db.Raw(`SELECT CAST(last_inbound_at AS TEXT) AS text, last_inbound_at FROM contacts
			WHERE channel = 't' AND contact_id = ?`, id).Scan(&row).Error; err != nil {
			t.Fatal(err)
		}
		if row.Text != c.text || !row.At.Equal(at) || row.At.Location() != time.UTC {
			t.Errorf("case %d: stored %q, read back %v; want %q and %v in UTC", i, row.Text, row.At, c.text, at)
		}
	}
}

// TestSQLiteTransactionsBeginImmediate: a transaction of the store holds the
// database's write lock from its start, before it writes anything, so another
// connection cannot begin writing meanwhile.
func TestSQLiteTransactionsBeginImmediate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock.db")
	s := openStore(t, path, &fakeClock{now: t0})
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	try := func() error {
		tx, err := other.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		_, err = tx.Exec(`UPDATE events SET attempts = 0 WHERE id = 0`)
		return err
	}
	if err := try(); err != nil {
		t.Fatalf("writing beside an idle store: %v", err)
	}
	err = s.Step(context.Background(), func(StepTx) error {
		if err := try(); err == nil || !strings.Contains(err.Error(), "locked") {
			return fmt.Errorf("another connection wrote while a step had begun and not yet written (error %v)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCleanText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"Привет 👋", "Привет 👋"},
		{"a\x00b", "a\uFFFDb"},
		{"\x00\x00", "\uFFFD\uFFFD"},
		{"bad\xff\xfeend", "bad\uFFFDend"},
		{"\xc3", "\uFFFD"},
	}
	for _, c := range cases {
		if got := cleanText(c.in); got != c.want {
			t.Errorf("cleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestClampLimit(t *testing.T) {
	cases := []struct{ in, want int }{{-1, 100}, {0, 100}, {1, 1}, {10000, 10000}, {10001, 10000}, {1 << 40, 10000}}
	for _, c := range cases {
		if got := clampLimit(c.in); got != c.want {
			t.Errorf("clampLimit(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x00b", "\xff", "Привет", "\xc3\x28"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := cleanText(s)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) {
			t.Fatalf("cleanText(%q) = %q is not storable", s, got)
		}
		if utf8.ValidString(s) && !strings.ContainsRune(s, 0) && got != s {
			t.Fatalf("cleanText changed clean text %q to %q", s, got)
		}
		if cleanText(got) != got {
			t.Fatalf("cleanText is not idempotent on %q", s)
		}
	})
}

// FuzzDecodeCursor feeds the admin API's cursor parameter, which is outside input.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", encodeCursor("dialogs", 1), encodeCursor("events", 1<<62), "!!", "ZGlhbG9nczot"} {
		f.Add("dialogs", s)
	}
	f.Fuzz(func(t *testing.T, list, cursor string) {
		id, err := decodeCursor(list, cursor)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("decodeCursor error %v is not ErrBadCursor", err)
			}
			return
		}
		if cursor == "" {
			if id != 0 {
				t.Fatalf("empty cursor decoded to %d", id)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("cursor %q decoded to non-positive id %d", cursor, id)
		}
		if back, err := decodeCursor(list, encodeCursor(list, id)); err != nil || back != id {
			t.Fatalf("round trip of %d: %d, %v", id, back, err)
		}
	})
}

func BenchmarkAppendEvents(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("sqlite/batch=%d", batch), func(b *testing.B) {
			s := openStore(b, filepath.Join(b.TempDir(), "bench.db"), &fakeClock{now: t0})
			benchAppend(b, s, batch)
		})
		b.Run(fmt.Sprintf("postgres/batch=%d", batch), func(b *testing.B) {
			s := openStore(b, storetest.PostgresDSN(b), &fakeClock{now: t0})
			benchAppend(b, s, batch)
		})
	}
}

func benchAppend(b *testing.B, s *GormStore, batch int) {
	n := 0
	evs := make([]event.Event, batch)
	for b.Loop() {
		for i := range evs {
			n++
			evs[i] = msg(fmt.Sprintf("wamid.%d", n), "79161234567", "Здравствуйте, у меня сломался кондиционер", t0)
		}
		if _, err := s.AppendEvents(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

// BenchmarkStep measures one typical transition: lock, update, history, timers,
// an outbound action and the event's outcome, in one transaction.
// BenchmarkStep measures a dialog step's transaction: claim and settle the event,
// lock and update the dialog, move its timer, enqueue a reply, write two history
// lines. batch=64 runs 64 steps of different dialogs in one Steps transaction (the
// processor groups concurrent steps so on SQLite); ns/op is per step throughout.
func BenchmarkStep(b *testing.B) {
	dbs := []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "bench.db") }},
		{"postgres", func(b *testing.B) string { return storetest.PostgresDSN(b) }},
	}
	for _, db := range dbs {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", db.name, batch), func(b *testing.B) {
				s := openStore(b, db.dsn(b), &fakeClock{now: t0})
				ctx := context.Background()
				// Each step settles its own event (an event is settled once), so events
				// are appended ahead, outside the timed part, a thousand at a time.
				var seqs []int64
				appended := 0
				nextSeq := func() int64 {
					if len(seqs) == 0 {
						b.StopTimer()
						evs := make([]event.Event, 1000)
						for i := range evs {
							appended++
							evs[i] = msg(fmt.Sprintf("bench:%d", appended), "1", "hi", t0)
						}
						res, err := s.AppendEvents(ctx, evs)
						if err != nil {
							b.Fatal(err)
						}
						for _, r := range res {
							seqs = append(seqs, r.Seq)
						}
						b.StartTimer()
					}
					seq := seqs[0]
					seqs = seqs[1:]
					return seq
				}
				dialogs := make([]int64, batch)
				for i := range dialogs {
					d := &Dialog{Dialog: dialog.Dialog{Flow: "lead", State: "a", Vars: map[string]any{"name": "Иван"}}}
					if err := s.Step(ctx, func(tx StepTx) error { return tx.CreateDialog(d) }); err != nil {
						b.Fatal(err)
					}
					dialogs[i] = d.ID
				}
				fns := make([]func(StepTx) error, batch)
				for n := 0; n < b.N; n += batch {
					for i := range fns {
						fns[i] = benchStep(dialogs[i], nextSeq())
					}
					for _, err := range s.Steps(ctx, fns) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// benchStep is the step of BenchmarkStep: dialog id takes event seq.
func benchStep(id, seq int64) func(tx StepTx) error {
	return func(tx StepTx) error {
		if ok, err := tx.ClaimEvent(seq); err != nil || !ok {
			return fmt.Errorf("claim %d: %v %v", seq, ok, err)
		}
		cur, err := tx.LockDialog(id)
		if err != nil {
			return err
		}
		from := cur.State
		cur.State = map[string]string{"a": "b", "b": "a"}[from]
		cur.LastEventID = seq
		if err := tx.UpdateDialog(cur); err != nil {
			return err
		}
		if err := tx.CancelTimers(cur.ID, from); err != nil {
			return err
		}
		if err := tx.ScheduleTimer(&Timer{DialogID: cur.ID, State: cur.State, Name: "24h", DueAt: t0.Add(24 * time.Hour)}); err != nil {
			return err
		}
		if err := tx.Enqueue(&OutboxItem{DialogID: &cur.ID, Kind: "send", Params: json.RawMessage(`{"text":"Как к вам обращаться?"}`)}); err != nil {
			return err
		}
		if err := tx.AppendHistory(
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistEvent, EventSeq: &seq},
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistTransition, FromState: from, ToState: cur.State},
		); err != nil {
			return err
		}
		return tx.MarkEvent(seq, EventProcessed, &cur.ID, "")
	}
}

func TestStatusValid(t *testing.T) {
	cases := []struct {
		name  string
		valid bool
		got   bool
	}{
		{"dialog active", true, dialog.Active.Valid()},
		{"dialog failed", true, dialog.Failed.Valid()},
		{"dialog bogus", false, dialog.Status("done").Valid()},
		{"event unrouted", true, EventUnrouted.Valid()},
		{"event bogus", false, EventStatus("").Valid()},
		{"outbox dead", true, OutboxDead.Valid()},
		{"outbox bogus", false, OutboxStatus("processed").Valid()},
	}
	for _, c := range cases {
		if c.got != c.valid {
			t.Errorf("%s: Valid() = %v, want %v", c.name, c.got, c.valid)
		}
	}
	ended := map[dialog.Status]bool{dialog.Active: false, dialog.Handoff: false, dialog.Finished: true, dialog.Abandoned: true, dialog.Failed: true}
	for s, want := range ended {
		if s.Ended() != want {
			t.Errorf("%s.Ended() = %v, want %v", s, s.Ended(), want)
		}
	}
}

// TestMarkEventSettlesOnce: a second worker applying the same event rolls back.
func TestMarkEventSettlesOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		res := append1(t, e, msg("k1", "79160000001", "hi", t0))
		seq := res[0].Seq
		d := e.newDialog(t, "f", "a")
		e.step(t, func(tx StepTx) error { return tx.MarkEvent(seq, EventProcessed, &d.ID, "") })
		err := e.s.Step(ctxT(t), func(tx StepTx) error {
			if err := tx.BindKey(d.ID, "second:worker"); err != nil {
				return err
			}
			return tx.MarkEvent(seq, EventProcessed, &d.ID, "")
		})
		if !errors.Is(err, ErrSettled) {
			t.Fatalf("second settle: %v, want ErrSettled", err)
		}
		if n := e.count(t, "dialog_keys", "key = ?", "second:worker"); n != 0 {
			t.Errorf("the second worker's step was not rolled back")
		}
		if err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.MarkEvent(seq+100, EventProcessed, nil, "") }); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing event: %v, want ErrNotFound", err)
		}
	})
}

func TestWaitingAndAdoptDialogs(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		mk := func(hash, state string, status dialog.Status) *Dialog {
			d := &Dialog{Dialog: dialog.Dialog{Flow: "lead", FlowHash: hash, State: state, Status: status, Vars: map[string]any{}}}
			e.step(t, func(tx StepTx) error { return tx.CreateDialog(d) })
			return d
		}
		a := mk("v1", "ask_phone", dialog.Active)
		b := mk("v1", "ask_phone", dialog.Handoff)
		c := mk("v1", "ask_name", dialog.Active)
		mk("v1", "ask_phone", dialog.Finished) // ended: not waiting
		mk("v2", "ask_phone", dialog.Active)   // already on the new version
		other := &Dialog{Dialog: dialog.Dialog{Flow: "other", FlowHash: "x", State: "ask_phone", Status: dialog.Active, Vars: map[string]any{}}}
		e.step(t, func(tx StepTx) error {
			if err := tx.CreateDialog(other); err != nil {
				return err
			}
			return tx.ScheduleTimer(&Timer{DialogID: a.ID, State: "ask_phone", Name: "24h#0", DueAt: t0.Add(24 * time.Hour)})
		})
		got, err := e.s.WaitingDialogs(ctxT(t), "lead", "v2")
		if err != nil {
			t.Fatal(err)
		}
		want := []WaitingCount{{Hash: "v1", State: "ask_name", Count: 1}, {Hash: "v1", State: "ask_phone", Count: 2}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("WaitingDialogs = %+v, want %+v", got, want)
		}
		n, err := e.s.AdoptDialogs(ctxT(t), "lead", "v2", map[string]string{"ask_phone": "ask_contact"})
		if err != nil || n != 3 {
			t.Fatalf("AdoptDialogs = %d, %v; want 3 moved", n, err)
		}
		for _, tc := range []struct {
			d     *Dialog
			state string
		}{{a, "ask_contact"}, {b, "ask_contact"}, {c, "ask_name"}} {
			got, err := e.s.GetDialog(ctxT(t), tc.d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.FlowHash != "v2" || got.State != tc.state || got.Revision != tc.d.Revision+1 {
				t.Errorf("dialog %d: %s/%s rev %d, want v2/%s rev %d", tc.d.ID, got.FlowHash, got.State, got.Revision, tc.state, tc.d.Revision+1)
			}
		}
		timers, _ := e.s.DialogTimers(ctxT(t), a.ID)
		if len(timers) != 1 || timers[0].State != "ask_contact" {
			t.Errorf("timer did not move with its state: %+v", timers)
		}
		if o, _ := e.s.GetDialog(ctxT(t), other.ID); o.State != "ask_phone" || o.FlowHash != "x" {
			t.Errorf("another flow's dialog moved: %+v", o)
		}
		if left, _ := e.s.WaitingDialogs(ctxT(t), "lead", "v2"); len(left) != 0 {
			t.Errorf("dialogs still waiting on old versions: %+v", left)
		}
	})
}

// TestClaimEvent: a step claims a pending event; on PostgreSQL a concurrent step
// skips the claimed row at once (SKIP LOCKED) instead of waiting for it.
func TestClaimEvent(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		res := append1(t, e, msg("c1", "79160000002", "hi", t0))
		seq := res[0].Seq
		if e.s.dialect == dialectPostgres {
			hold := make(chan struct{})
			claimed := make(chan bool, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = e.s.Step(ctxT(t), func(tx StepTx) error {
					ok, err := tx.ClaimEvent(seq)
					if err != nil {
						t.Error(err)
					}
					claimed <- ok
					<-hold // keep the row locked
					return nil
				})
			}()
			if !<-claimed {
				t.Fatal("the first step could not claim a pending event")
			}
			var second bool
			if err := e.s.Step(ctxT(t), func(tx StepTx) error {
				var err error
				second, err = tx.ClaimEvent(seq)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			close(hold)
			<-done
			if second {
				t.Error("a second step claimed an event another step holds")
			}
		}
		var ok bool
		e.step(t, func(tx StepTx) error {
			var err error
			if ok, err = tx.ClaimEvent(seq); err != nil {
				return err
			}
			return tx.MarkEvent(seq, EventUnrouted, nil, "")
		})
		if !ok {
			t.Error("a pending event could not be claimed")
		}
		e.step(t, func(tx StepTx) error {
			var err error
			ok, err = tx.ClaimEvent(seq)
			return err
		})
		if ok {
			t.Error("a settled event was claimed again")
		}
	})
}
