package processor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// countingStore counts the reads the dialog and window caches are meant to save.
type countingStore struct {
	store.Store
	dialogs, keys, windows, routes, awaiting atomic.Int64
}

func (c *countingStore) AwaitingFiles(ctx context.Context, before int64, keys []string) (bool, error) {
	c.awaiting.Add(1)
	return c.Store.AwaitingFiles(ctx, before, keys)
}

func (c *countingStore) RouteKeys(ctx context.Context, keys []string) (*store.DialogRoute, error) {
	c.routes.Add(1)
	return c.Store.RouteKeys(ctx, keys)
}

func (c *countingStore) GetDialog(ctx context.Context, id int64) (*store.Dialog, error) {
	c.dialogs.Add(1)
	return c.Store.GetDialog(ctx, id)
}

func (c *countingStore) LoadDialog(ctx context.Context, id int64) (*store.Dialog, error) {
	c.dialogs.Add(1)
	c.keys.Add(1)
	return c.Store.LoadDialog(ctx, id)
}

func (c *countingStore) DialogKeys(ctx context.Context, id int64) ([]store.DialogKey, error) {
	c.keys.Add(1)
	return c.Store.DialogKeys(ctx, id)
}

func (c *countingStore) LastInbound(ctx context.Context, channel, contact string) (time.Time, error) {
	c.windows.Add(1)
	return c.Store.LastInbound(ctx, channel, contact)
}

// TestCachesSaveReads walks simple_lead to its issue: with a single writer
// (SQLite) no step reads its dialog again after the start, no action reads it at
// all, and the contact's later messages are routed without a look-up; with
// PostgreSQL every step reads. Either way the contact's window
// is read once and then remembered, and the dialog ends where it must.
func TestCachesSaveReads(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		var cs *countingStore
		h := newHarnessWith(t, "../../flows.d", dsn, func(st store.Store) store.Store {
			cs = &countingStore{Store: st}
			return cs
		})
		var routes int64
		for i, text := range []string{"Здравствуйте", "Анна", "Течёт кондиционер"} {
			h.append(h.wa(text))
			h.settle()
			if i == 0 {
				routes = cs.routes.Load() // a new contact: only the store can say
			}
		}
		d := h.dialog()
		if d.State != "issue_open" || d.Vars["issue_id"] != "1542" {
			t.Fatalf("after the problem: state %s vars %v", d.State, d.Vars)
		}
		if got := len(h.conn.sent()); got != 4 {
			t.Fatalf("%d actions performed, want 4: %q", got, h.conn.sent())
		}
		// Steps after the start: two messages and four action results.
		if cs.Store.SingleWriter() {
			if n, k := cs.dialogs.Load(), cs.keys.Load(); n != 0 || k != 0 {
				t.Errorf("dialog read %d times, its keys %d times; want 0 (cached)", n, k)
			}
			if n := cs.routes.Load() - routes; n != 0 {
				t.Errorf("the known contact's messages were routed by %d store look-ups, want 0", n)
			}
		} else if n := cs.dialogs.Load(); n < 6 {
			t.Errorf("dialog read %d times; without the cache each of 6 steps and 4 actions reads it", n)
		}
		if n := cs.windows.Load(); n != 0 {
			t.Errorf("window read %d times, want 0 (the intake remembered it)", n)
		}
	})
}

// TestWindowCacheRereadsOldTimes: the intake remembers the last inbound times it
// stores; a remembered time older than the window is read again, since a newer one
// may be stored (by another replica); an unknown contact is read each time.
func TestWindowCacheRereadsOldTimes(t *testing.T) {
	h, cs := newWrapped(t, "../../flows.d", func(st store.Store) *countingStore { return &countingStore{Store: st} })
	ctx := context.Background()
	h.append(h.wa("Здравствуйте"))
	now := h.clk.Now()
	first, err := h.p.lastInbound(ctx, "waba", "79161234567", now.Add(23*time.Hour), 24*time.Hour)
	if err != nil || !first.Equal(now) {
		t.Fatalf("inside the window: %v %v, want %v", first, err, now)
	}
	if n := cs.windows.Load(); n != 0 {
		t.Fatalf("inside the window: %d reads, want 0 (the intake remembered it)", n)
	}
	h.clk.Advance(30 * time.Hour)
	// Stored past this processor's intake, as another replica would.
	later := h.wa("Я здесь")
	later.At = h.clk.Now()
	if _, err := h.st.AppendEvents(ctx, []event.Event{later}); err != nil {
		t.Fatal(err)
	}
	got, err := h.p.lastInbound(ctx, "waba", "79161234567", h.clk.Now(), 24*time.Hour)
	if err != nil || !got.After(first) {
		t.Fatalf("after the window: %v (first %v), %v", got, first, err)
	}
	if n := cs.windows.Load(); n != 1 {
		t.Fatalf("after the window: %d reads, want 1", n)
	}
	// An unknown contact is not remembered: each send asks again.
	for range 2 {
		if at, err := h.p.lastInbound(ctx, "waba", "70000000000", h.clk.Now(), 24*time.Hour); err != nil || !at.IsZero() {
			t.Fatalf("unknown contact: %v %v", at, err)
		}
	}
	if n := cs.windows.Load(); n != 3 {
		t.Fatalf("unknown contact: %d reads in all, want 3", n)
	}
}

// TestDialogCacheBounded: the cache keeps at most dialogCacheSize dialogs, drops
// ended ones, and hands out copies.
func TestDialogCacheBounded(t *testing.T) {
	c := newDialogCache()
	for i := range int64(dialogCacheSize + 10) {
		c.put(&store.Dialog{Dialog: dialog.Dialog{ID: i + 1, State: "a", Status: dialog.Active}}, 0)
	}
	if n := len(c.m); n != dialogCacheSize {
		t.Fatalf("%d dialogs kept, want %d", n, dialogCacheSize)
	}
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 1, State: "b", Status: dialog.Active, Keys: []string{"waba:1"},
		Channel: "waba", BusinessNumber: "498761234560011"}}, 0)
	row, ok := c.get(1)
	if !ok || row.State != "b" || len(row.Keys) != 1 {
		t.Fatalf("get: %v %v", row, ok)
	}
	// Routing by a key gets the dialog's channel and number while it is kept, and
	// its id alone once it is not (a key may outlive its dialog's entry).
	if r, ok := c.route([]string{"waba:1"}); !ok || *r != (store.DialogRoute{ID: 1, Channel: "waba", BusinessNumber: "498761234560011"}) {
		t.Fatalf("route: %+v %v", r, ok)
	}
	delete(c.m, 1)
	if r, ok := c.route([]string{"waba:1"}); !ok || *r != (store.DialogRoute{ID: 1}) {
		t.Fatalf("route without the entry: %+v %v", r, ok)
	}
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 1, State: "b", Status: dialog.Active, Keys: []string{"waba:1"}}}, 0)
	row.State = "changed by the caller"
	if again, _ := c.get(1); again.State != "b" {
		t.Fatalf("a caller's change reached the cache: %q", again.State)
	}
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 1, State: "done", Status: dialog.Finished}}, 0)
	if _, ok := c.get(1); ok {
		t.Fatal("an ended dialog stays cached")
	}
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 2, Status: dialog.Active}}, 0)
	c.drop(2)
	if _, ok := c.get(2); ok {
		t.Fatal("a dropped dialog stays cached")
	}
	var none *dialogCache // without a single writer there is no cache
	none.put(&store.Dialog{Dialog: dialog.Dialog{ID: 3}}, 0)
	none.drop(3)
	if _, ok := none.get(3); ok {
		t.Fatal("a nil cache returned a dialog")
	}
}

// TestStaleCacheRetried: a dialog changed behind the cache (its revision moved
// on, as adopting a new flow version does) fails its step with ErrConflict; the
// step is retried from a fresh read and the event is processed, not failed.
func TestStaleCacheRetried(t *testing.T) {
	h := newHarness(t, "../../flows.d")
	h.append(h.wa("Здравствуйте"))
	h.settle()
	d := h.dialog()
	// Move the stored revision on behind the cache's back: away to another version
	// hash and back, as two reloads would.
	ctx := context.Background()
	for _, hash := range []string{"another-version", d.FlowHash} {
		if n, err := h.st.AdoptDialogs(ctx, d.Flow, hash, nil); err != nil || n != 1 {
			t.Fatalf("adopt to %s: %d, %v", hash, n, err)
		}
	}
	h.append(h.wa("Анна"))
	h.settle()
	d = h.dialog()
	if d.State != "ask_problem" || d.Vars["name"] != "Анна" {
		t.Fatalf("after a stale cache: state %s vars %v", d.State, d.Vars)
	}
	h.allProcessed()
}

// TestStaleKeyToEndedDialog: should the key map still lead to a dialog that has
// ended, the event is not lost in a loop: the keys are forgotten, the store is
// asked, and the event starts a new dialog.
func TestStaleKeyToEndedDialog(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "once.yaml"), []byte(`flow: once
start: telegram.message
initial: ask
states:
  ask:
    on: { telegram.message: [ { goto: finished } ] }
  finished:
    final: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir)
	tg := func(key string) event.Event {
		return event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: key, Keys: []string{"telegram:7"},
			Contact: event.Contact{Channel: "telegram", ID: "7"}, Data: map[string]any{}}
	}
	h.append(tg("m1")) // starts the dialog in ask
	h.settle()
	first := h.dialog().ID
	if r, ok := h.p.dialogs.route([]string{"telegram:7"}); !ok || r.ID != first {
		t.Fatalf("key map after the start: %+v %v, want dialog %d", r, ok, first)
	}
	h.append(tg("m2")) // ends it
	h.settle()
	if _, ok := h.p.dialogs.route([]string{"telegram:7"}); ok {
		t.Fatal("the ended dialog's key is still mapped")
	}
	h.p.dialogs.keys["telegram:7"] = first // as if the end had been missed
	h.append(tg("m3"))
	h.settle()
	ds, _, err := h.st.ListDialogs(context.Background(), store.DialogFilter{}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].ID == first || ds[0].State != "ask" {
		t.Fatalf("want a second dialog in ask, got %+v", ds)
	}
	h.allProcessed()
}

// TestStepRunTwiceInABatch: on SQLite a dialog step shares its transaction with
// others; when another step of the batch fails, the batch is run again (see
// Store.Steps). The dialog step then runs twice and must commit once, from the
// dialog as it was read: one revision further, and the cache at that revision.
func TestStepRunTwiceInABatch(t *testing.T) {
	h := newHarness(t, "../../flows.d")
	ctx := context.Background()
	h.append(h.wa("Здравствуйте"))
	h.settle()
	before := h.dialog()
	h.append(h.wa("Анна"))
	pending, err := h.st.PendingEvents(ctx, 0, 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %v %v", pending, err)
	}

	// Hold the writer with a first step, so that the next two are batched.
	hold, holding := make(chan struct{}), make(chan struct{})
	go func() {
		_ = h.p.step(ctx, func(store.StepTx) error { close(holding); <-hold; return nil })
	}()
	<-holding
	waitQueued := func(n int) {
		for queued := 0; queued < n; {
			h.p.w.mu.Lock()
			queued = len(h.p.w.queue)
			h.p.w.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}
	// The dialog step first, then the failing one: the failure comes after the
	// dialog step has run, so the batch runs the dialog step again.
	stepped := make(chan error, 1)
	go func() { _, err := h.p.stepper.once(ctx, before.ID, pending[0]); stepped <- err }()
	waitQueued(1)
	failed := make(chan error, 1)
	go func() {
		failed <- h.p.step(ctx, func(tx store.StepTx) error {
			if err := tx.AppendHistory(store.HistoryEntry{DialogID: before.ID, Kind: dialog.HistError}); err != nil {
				return err
			}
			return errors.New("boom")
		})
	}()
	waitQueued(2)
	close(hold)
	if err := <-stepped; err != nil {
		t.Fatalf("the dialog step: %v", err)
	}
	if err := <-failed; err == nil {
		t.Fatal("the failing step succeeded")
	}
	after := h.dialog()
	if after.State != "ask_problem" || after.Revision != before.Revision+1 {
		t.Fatalf("after the batch: %s at revision %d, want ask_problem at %d", after.State, after.Revision, before.Revision+1)
	}
	cached, ok := h.p.dialogs.get(after.ID)
	if !ok || cached.Revision != after.Revision || cached.State != after.State {
		t.Fatalf("cache: %+v (ok %v), stored revision %d", cached, ok, after.Revision)
	}
	h.settle()
	h.allProcessed()
}

// TestDialogCacheClear: clearing forgets dialogs and keys, and a dialog read
// before the clear is not put back after it.
func TestDialogCacheClear(t *testing.T) {
	c := newDialogCache()
	keys := []string{"waba:1"}
	before := c.generation()
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 1, State: "a", Status: dialog.Active, Keys: keys}}, before)
	c.clear()
	if _, ok := c.get(1); ok {
		t.Fatal("a cleared dialog is still kept")
	}
	if _, ok := c.route([]string{"waba:1"}); ok {
		t.Fatal("a cleared key is still mapped")
	}
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 1, State: "stale", Status: dialog.Active, Keys: keys}}, before) // read before the clear
	if _, ok := c.get(1); ok {
		t.Fatal("a dialog read before the clear was put back")
	}
	c.put(&store.Dialog{Dialog: dialog.Dialog{ID: 1, State: "b", Status: dialog.Active, Keys: keys}}, c.generation())
	if row, ok := c.get(1); !ok || row.State != "b" {
		t.Fatalf("after the clear: %+v %v", row, ok)
	}
}

// TestAdoptClearsCache: moving live dialogs to a new flow version empties the
// dialog cache, so no step goes on from a dialog as it was before the move.
func TestAdoptClearsCache(t *testing.T) {
	dir := t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "ask.yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("flow: ask\nstart: telegram.message\ninitial: a\nstates:\n  a:\n    on: { telegram.message: [ { send: \"v1\" } ] }\n")
	h := newHarness(t, dir)
	h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: "m1", Keys: []string{"telegram:1"},
		Contact: event.Contact{Channel: "telegram", ID: "1"}, Data: map[string]any{}})
	h.settle()
	d := h.dialog()
	id := d.ID
	// The step cached it, unless a second hand-out of the event (a rescan) found it
	// settled and dropped the entry to be safe: cache it here either way.
	h.p.dialogs.put(d, h.p.dialogs.generation())
	write("flow: ask\nstart: telegram.message\ninitial: b\nmigrate: { a: b }\nstates:\n  b:\n    on: { telegram.message: [ { send: \"v2\" } ] }\n")
	h.reloadAndAdopt()
	if _, ok := h.p.dialogs.get(id); ok {
		t.Fatal("the moved dialog is still cached")
	}
}

// TestFileKeysSpareTheRead: a message waits behind its contact's earlier message
// whose files are being fetched, and only a contact that sent files pays the read
// that finds out; the others are told by what the processor remembers.
func TestFileKeysSpareTheRead(t *testing.T) {
	h, cs := newWrapped(t, "../../flows.d", func(st store.Store) *countingStore { return &countingStore{Store: st} })
	ctx := context.Background()
	route := func() {
		if err := h.p.RouteOnce(ctx); err != nil {
			t.Fatal(err)
		}
		h.p.Drain()
	}
	// The first look (nothing waits for files yet) loads what is pending: nothing.
	h.append(h.waFrom("79160000003", "first"))
	route()
	photo := h.waFrom("79160000001", "")
	photo.Data = map[string]any{"kind": "image", event.FieldFetch: map[string]any{"source": "waba",
		"items": []any{map[string]any{"ref": "media-1", "kind": "image"}}}}
	res := h.append(photo, h.waFrom("79160000001", "after the photo"), h.waFrom("79160000002", "someone else"))
	route() // the photo's files are not fetched: the outbox is not run
	for i, want := range []store.EventStatus{store.EventPending, store.EventPending, store.EventProcessed} {
		if e, err := h.st.GetEvent(ctx, res[i].Seq); err != nil || e.Status != want {
			t.Fatalf("event %d: %+v %v, want %s", i+1, e, err, want)
		}
	}
	if n := cs.awaiting.Load(); n != 1 {
		t.Errorf("%d reads of the messages waiting for files, want 1 (the photo's contact's; not the other's)", n)
	}
	// A contact known from before the processor started: its pending photo is read
	// once, at the first look.
	h2 := newHarnessOn(t, "../../flows.d", h.dsn)
	h2.append(h2.waFrom("79160000001", "and once more"))
	if err := h2.p.RouteOnce(ctx); err != nil {
		t.Fatal(err)
	}
	h2.p.Drain()
	if e, _ := h2.st.GetEvent(ctx, res[1].Seq); e.Status != store.EventPending {
		t.Errorf("a new processor let the contact's message overtake the photo: %s", e.Status)
	}
}
