package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// retentionWorld is a store holding every kind of row the retention decides about,
// some from before the cut-off and some after.
type retentionWorld struct {
	ended, endedLate, endedBusy int64 // finished long ago; finished recently; finished long ago with an action pending
	active, handoff             int64 // live since long ago
	// purgedEvents and keptEvents are event seqs the purge must and must not remove.
	purgedEvents, keptEvents []int64
}

const day = 24 * time.Hour

// buildRetentionWorld fills e's store; its clock ends 100 days after t0. Rows
// stamped at t0 are old; rows stamped at t0+100d are recent.
func buildRetentionWorld(t *testing.T, e *env) retentionWorld {
	t.Helper()
	var w retentionWorld
	n := 0
	newEvent := func(text string) int64 {
		n++
		ev := msg(fmt.Sprintf("ret:%d", n), fmt.Sprintf("7916000%04d", n), text, e.clock.Now())
		return append1(t, e, ev)[0].Seq
	}
	mark := func(seq int64, status EventStatus, dialog *int64) {
		e.step(t, func(tx StepTx) error { return tx.MarkEvent(seq, status, dialog, "") })
	}
	// dialogWith makes a dialog with one processed event, history, a key, a timer
	// and an action that is done (or pending when busy).
	dialogWith := func(status dialog.Status, busy bool) (int64, int64) {
		d := e.newDialog(t, "f", "s")
		seq := newEvent("to the dialog")
		e.step(t, func(tx StepTx) error {
			if err := tx.BindKey(d.ID, fmt.Sprintf("waba:%d", d.ID)); err != nil {
				return err
			}
			if err := tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistEvent, EventSeq: &seq},
				HistoryEntry{DialogID: d.ID, Kind: dialog.HistTransition, FromState: "s", ToState: "t"}); err != nil {
				return err
			}
			if err := tx.ScheduleTimer(&Timer{DialogID: d.ID, State: "s", Name: "1h", DueAt: e.clock.Now().Add(time.Hour)}); err != nil {
				return err
			}
			item := &OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{}`)}
			if busy { // waiting for its next try, far ahead
				item.NextAt = e.clock.Now().Add(1000 * day)
			}
			return tx.Enqueue(item)
		})
		mark(seq, EventProcessed, &d.ID)
		if !busy {
			items, err := e.s.ClaimOutbox(ctxT(t), e.clock.Now(), 10, time.Minute)
			if err != nil || len(items) == 0 {
				t.Fatalf("claim: %v %v", items, err)
			}
			for _, it := range items {
				if err := e.s.CompleteOutbox(ctxT(t), it.ID, json.RawMessage(`{}`)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if status != dialog.Active {
			e.step(t, func(tx StepTx) error {
				cur, err := tx.LockDialog(d.ID)
				if err != nil {
					return err
				}
				cur.Status = status
				return tx.UpdateDialog(cur)
			})
		}
		return d.ID, seq
	}

	// At t0: the old world.
	var seq int64
	w.active, seq = dialogWith(dialog.Active, false)
	w.keptEvents = append(w.keptEvents, seq)
	w.handoff, seq = dialogWith(dialog.Handoff, false)
	w.keptEvents = append(w.keptEvents, seq)
	w.ended, seq = dialogWith(dialog.Finished, false)
	w.purgedEvents = append(w.purgedEvents, seq)
	w.endedBusy, seq = dialogWith(dialog.Abandoned, true)
	w.keptEvents = append(w.keptEvents, seq)

	unrouted, processed, failed, pending := newEvent("nobody's"), newEvent("a timer's"), newEvent("broken"), newEvent("waiting")
	mark(unrouted, EventUnrouted, nil)
	mark(processed, EventProcessed, nil)
	mark(failed, EventFailed, nil)
	w.purgedEvents = append(w.purgedEvents, unrouted, processed)
	w.keptEvents = append(w.keptEvents, failed, pending)
	e.step(t, func(tx StepTx) error {
		return tx.Enqueue(&OutboxItem{Kind: "http.call", Params: json.RawMessage(`{}`)})
	})
	items, err := e.s.ClaimOutbox(ctxT(t), e.clock.Now(), 10, time.Minute)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim the dialog-less action: %v %v", items, err)
	}
	if err := e.s.FailOutbox(ctxT(t), items[0].ID, OutboxDead, "http_500", "gave up"); err != nil {
		t.Fatal(err)
	}
	e.step(t, func(tx StepTx) error {
		return tx.Enqueue(&OutboxItem{Kind: "http.call", Params: json.RawMessage(`{}`), NextAt: e.clock.Now().Add(1000 * day)})
	})

	// 100 days later: the recent world.
	e.clock.Advance(100 * day)
	w.endedLate, seq = dialogWith(dialog.Finished, false)
	w.keptEvents = append(w.keptEvents, seq)
	late := newEvent("recent, nobody's")
	mark(late, EventUnrouted, nil)
	w.keptEvents = append(w.keptEvents, late)
	return w
}

func TestRetentionPurge(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		w := buildRetentionWorld(t, e)
		cutoff := e.clock.Now().Add(-90 * day)
		before := map[string]int64{}
		for _, table := range []string{"dialogs", "dialog_keys", "history", "timers", "outbox", "events", "contacts"} {
			before[table] = e.count(t, table, "")
		}

		ids, err := e.s.EndedDialogs(ctxT(t), cutoff, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, []int64{w.ended}) {
			t.Fatalf("EndedDialogs = %v, want only the dialog that ended long ago with nothing in flight (%d)", ids, w.ended)
		}
		// Asked to purge live and busy dialogs too, PurgeDialogs checks again and
		// leaves them alone.
		got, err := e.s.PurgeDialogs(ctxT(t), []int64{w.active, w.handoff, w.ended, w.endedBusy, w.endedLate}, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		want := Purged{Dialogs: 1, Keys: 1, History: 2, Timers: 1, Outbox: 1, Events: 1}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PurgeDialogs removed %+v, want %+v", got, want)
		}

		// Rows of no dialog, one at a time: the limit holds per kind.
		got, err = e.s.PurgeUnattached(ctxT(t), cutoff, 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Purged{Events: 1, Outbox: 1, Contacts: 1}); !reflect.DeepEqual(got, want) {
			t.Errorf("PurgeUnattached(limit 1) removed %+v, want %+v", got, want)
		}
		got2, err := e.s.PurgeUnattached(ctxT(t), cutoff, 100)
		if err != nil {
			t.Fatal(err)
		}
		got.Add(got2)
		// Old contacts: one per old event (8 of them), the recent ones stay.
		if want := (Purged{Events: 2, Outbox: 1, Contacts: 8}); !reflect.DeepEqual(got, want) {
			t.Errorf("PurgeUnattached removed %+v in all, want %+v", got, want)
		}
		if again, err := e.s.PurgeUnattached(ctxT(t), cutoff, 100); err != nil || again.Total() != 0 {
			t.Errorf("a second pass removed %+v (%v), want nothing", again, err)
		}

		for _, seq := range w.purgedEvents {
			if _, err := e.s.GetEvent(ctxT(t), seq); err == nil {
				t.Errorf("event %d survived the purge", seq)
			}
		}
		for _, seq := range w.keptEvents {
			if _, err := e.s.GetEvent(ctxT(t), seq); err != nil {
				t.Errorf("event %d was purged: %v", seq, err)
			}
		}
		for _, id := range []int64{w.active, w.handoff, w.endedBusy, w.endedLate} {
			if _, err := e.s.GetDialog(ctxT(t), id); err != nil {
				t.Errorf("dialog %d was purged: %v", id, err)
			}
			if h, err := e.s.DialogHistory(ctxT(t), id); err != nil || len(h) != 2 || h[0].EventSeq == nil {
				t.Errorf("history of dialog %d: %v %v, want both entries, the first with its event", id, h, err)
			}
			if keys, err := e.s.DialogKeys(ctxT(t), id); err != nil || len(keys) != 1 {
				t.Errorf("keys of dialog %d: %v %v", id, keys, err)
			}
		}
		if _, err := e.s.GetDialog(ctxT(t), w.ended); err == nil {
			t.Errorf("dialog %d survived the purge", w.ended)
		}
		if n := e.count(t, "outbox", "status = 'pending'"); n != 2 {
			t.Errorf("%d pending actions left, want 2 (the busy dialog's and the dialog-less one)", n)
		}
		if n := e.count(t, "events", "status IN ('pending', 'failed')"); n != 2 {
			t.Errorf("%d pending or failed events left, want 2", n)
		}
		after := map[string]int64{}
		for table := range before {
			after[table] = e.count(t, table, "")
		}
		t.Logf("rows before %v, after %v", before, after)

		// Appending and stepping go on as before: the purge left nothing dangling.
		d := e.newDialog(t, "f", "s")
		seq := newRetentionEvent(t, e)
		e.step(t, func(tx StepTx) error {
			if err := tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistEvent, EventSeq: &seq}); err != nil {
				return err
			}
			return tx.MarkEvent(seq, EventProcessed, &d.ID, "")
		})
	})
}

func newRetentionEvent(t *testing.T, e *env) int64 {
	t.Helper()
	return append1(t, e, event.Event{Source: event.SourceWABA, Type: event.TypeWABAMessage, At: e.clock.Now(),
		DedupeKey: "ret:after", Keys: []string{"waba:1"}})[0].Seq
}

func TestPurgedSums(t *testing.T) {
	p := Purged{Dialogs: 1, Keys: 2, History: 3, Timers: 4, Outbox: 5, Events: 6, Contacts: 7}
	p.Add(Purged{Dialogs: 1, Contacts: 1})
	if p.Total() != 30 {
		t.Errorf("Total = %d, want 30", p.Total())
	}
	var sum int64
	for _, k := range p.Kinds() {
		sum += k.Count
	}
	if sum != p.Total() || len(p.Kinds()) != 8 || p.Kinds()[0] != (PurgedKind{"dialogs", 2}) {
		t.Errorf("Kinds = %v", p.Kinds())
	}
}

// TestForeignKeysIndexed: every column that refers to another table leads an index.
// Deleting a row makes the database look for the rows that refer to it; without
// such an index each delete the retention makes would scan the referring table.
func TestForeignKeysIndexed(t *testing.T) {
	e := &env{s: openStore(t, t.TempDir()+"/fixit.db", &fakeClock{now: t0})}
	var tables []string
	if err := e.s.db.Raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).
		Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, table := range tables {
		var fks []struct {
			Table string `gorm:"column:table"`
			From  string `gorm:"column:from"`
		}
		if err := e.s.db.Raw(`SELECT "table", "from" FROM pragma_foreign_key_list(?)`, table).Scan(&fks).Error; err != nil {
			t.Fatal(err)
		}
		var leading []string
		if err := e.s.db.Raw(`SELECT ii.name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii WHERE ii.seqno = 0`,
			table).Scan(&leading).Error; err != nil {
			t.Fatal(err)
		}
		for _, fk := range fks {
			refs++
			if !slices.Contains(leading, fk.From) {
				t.Errorf("%s.%s refers to %s and leads no index (indexes lead with %v)", table, fk.From, fk.Table, leading)
			}
			// The look-up a delete makes uses it (a partial index too).
			var plan []struct {
				Detail string `gorm:"column:detail"`
			}
			if err := e.s.db.Raw(`EXPLAIN QUERY PLAN SELECT 1 FROM `+table+` WHERE `+fk.From+` = ?`, 1).Scan(&plan).Error; err != nil {
				t.Fatal(err)
			}
			if len(plan) == 0 || !strings.Contains(plan[0].Detail, "USING") || !strings.Contains(plan[0].Detail, "INDEX") {
				t.Errorf("finding the %s rows of one %s: plan %+v, want an index", table, fk.Table, plan)
			}
		}
	}
	if refs < 6 {
		t.Fatalf("found only %d foreign keys", refs)
	}
}
