package store

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fixit-exchange/fixit/engine/event"
)

// photo is a WhatsApp message with a file to fetch, from waID.
func photo(key, waID string, e *env) event.Event {
	ev := msg(key, waID, "", e.clock.Now())
	ev.Data = map[string]any{"kind": "image", event.FieldFetch: map[string]any{"source": "waba",
		"items": []any{map[string]any{"ref": "media-" + key, "kind": "image"}}}}
	return ev
}

// A message with files is stored with its fetch, and holds its contact's later
// events (not others') back until it is processed; SettleFiles gives it its files.
func TestMessagesWaitForTheirFiles(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		res := append1(t, e, photo("p1", "79160000001", e), msg("t1", "79160000001", "after", e.clock.Now()),
			msg("t2", "79160000002", "someone else", e.clock.Now()))
		seq := res[0].Seq
		items, _, err := e.s.ListOutbox(ctx, OutboxFilter{}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 1 || items[0].Kind != event.KindFetch || items[0].DialogID != nil {
			t.Fatalf("outbox = %+v, want one file.fetch of no dialog", items)
		}
		var params map[string]any
		_ = json.Unmarshal(items[0].Params, &params)
		if params["event"] != float64(seq) || params["source"] != "waba" {
			t.Errorf("fetch params = %v", params)
		}
		// A duplicate delivery queues nothing more.
		append1(t, e, photo("p1", "79160000001", e))
		if n := e.count(t, "outbox", "kind = ?", event.KindFetch); n != 1 {
			t.Errorf("%d fetches after a duplicate, want 1", n)
		}

		waits := func(before int64, key string) bool {
			t.Helper()
			w, err := e.s.AwaitingFiles(ctx, before, []string{key})
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		if !waits(res[1].Seq, event.WABAKey(testWABANumber, "79160000001")) || waits(res[2].Seq, event.WABAKey(testWABANumber, "79160000002")) || waits(seq, event.WABAKey(testWABANumber, "79160000001")) {
			t.Errorf("AwaitingFiles: the contact's later event must wait, another contact's and earlier ones not")
		}

		files := map[string]any{event.FieldFile: map[string]any{"id": "f1"}, event.FieldFiles: []any{map[string]any{"id": "f1"}}}
		e.step(t, func(tx StepTx) error { return tx.SettleFiles(seq, files) })
		got, err := e.s.GetEvent(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Data[event.FieldFile], files[event.FieldFile]) || got.Data["kind"] != "image" || event.AwaitsFiles(&got.Event) {
			t.Errorf("data after SettleFiles = %v", got.Data)
		}
		// Until it is processed, the contact's later events still wait behind it.
		if !waits(res[1].Seq, event.WABAKey(testWABANumber, "79160000001")) {
			t.Errorf("a settled but unprocessed message stopped holding its contact's events")
		}
		e.step(t, func(tx StepTx) error { return tx.MarkEvent(seq, EventProcessed, nil, "") })
		if waits(res[1].Seq, event.WABAKey(testWABANumber, "79160000001")) {
			t.Errorf("a processed message still holds its contact's events")
		}
		// A processed event's data is not touched again.
		e.step(t, func(tx StepTx) error { return tx.SettleFiles(seq, map[string]any{event.FieldFileError: "late"}) })
		if got, _ := e.s.GetEvent(ctx, seq); got.Data[event.FieldFileError] != nil {
			t.Errorf("SettleFiles changed a processed event")
		}
	})
}

// Files go with their events and dialogs: the purge deletes their rows and hands
// back their paths.
func TestPurgeFiles(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		d := e.newDialog(t, "f", "s")
		seqs := append1(t, e, msg("a", "79160000001", "x", e.clock.Now()), msg("b", "79160000002", "y", e.clock.Now()))
		e.step(t, func(tx StepTx) error {
			if err := tx.MarkEvent(seqs[0].Seq, EventProcessed, &d.ID, ""); err != nil {
				return err
			}
			return tx.MarkEvent(seqs[1].Seq, EventUnrouted, nil, "")
		})
		for i, p := range []struct {
			id    string
			event int64
		}{{"f-dialog", seqs[0].Seq}, {"f-loose", seqs[1].Seq}} {
			ev := p.event
			if err := e.s.SaveFile(ctx, &FileRow{ID: p.id, EventID: &ev, Name: "n", Path: "ab/" + p.id, Size: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if f, err := e.s.GetFile(ctx, "f-dialog"); err != nil || f.Path != "ab/f-dialog" || *f.EventID != seqs[0].Seq {
			t.Fatalf("GetFile = %+v, %v", f, err)
		}
		d.Status = "finished"
		e.step(t, func(tx StepTx) error { return tx.UpdateDialog(d) })
		e.clock.Advance(100 * day)
		p, err := e.s.PurgeDialogs(ctx, []int64{d.ID}, e.clock.Now().Add(-day))
		if err != nil {
			t.Fatal(err)
		}
		if p.Files != 1 || !reflect.DeepEqual(p.FilePaths, []string{"ab/f-dialog"}) {
			t.Errorf("PurgeDialogs files %d %v", p.Files, p.FilePaths)
		}
		p, err = e.s.PurgeUnattached(ctx, e.clock.Now().Add(-day), 10)
		if err != nil {
			t.Fatal(err)
		}
		if p.Files != 1 || !reflect.DeepEqual(p.FilePaths, []string{"ab/f-loose"}) || e.count(t, "files", "1 = 1") != 0 {
			t.Errorf("PurgeUnattached files %d %v", p.Files, p.FilePaths)
		}
	})
}

// The read of the events that hold their contacts' later events back goes through
// the partial index of those events, not through the pending events before it
// (which a backlog makes many: every customer message reads it).
func TestAwaitingFilesUsesItsIndex(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "plan.db"), &fakeClock{now: t0})
	var plan []struct {
		Detail string `gorm:"column:detail"`
	}
	if err := s.db.Raw(`EXPLAIN QUERY PLAN `+s.awaitingFilesSQL(), 1000).Scan(&plan).Error; err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || !strings.Contains(plan[0].Detail, "USING INDEX events_awaiting_files") {
		t.Errorf("plan %+v, want a search of events_awaiting_files", plan)
	}
}
