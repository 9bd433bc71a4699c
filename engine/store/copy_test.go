package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// dump reads every row of every table in key order, each as one line of text
// (times in UTC), so that two databases can be compared row for row.
func dump(t *testing.T, s *GormStore) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, c := range copiers {
		lines, err := c.(interface {
			dump(*gorm.DB) ([]string, error)
		}).dump(s.db.WithContext(ctxT(t)))
		if err != nil {
			t.Fatalf("dump %s: %v", c.table(), err)
		}
		out[c.table()] = lines
	}
	return out
}

func (c tableCopy[T]) dump(db *gorm.DB) ([]string, error) {
	var rows []T
	if err := db.Raw(`SELECT ` + c.columns + ` FROM ` + c.name + ` ORDER BY ` + c.key).Scan(&rows).Error; err != nil {
		return nil, err
	}
	lines := make([]string, len(rows))
	for i := range rows {
		var parts []string
		for _, v := range c.values(&rows[i]) {
			switch x := v.(type) {
			case *int64:
				if x != nil {
					v = *x
				}
			case *time.Time:
				if x != nil {
					v = x.UTC().Format(time.RFC3339Nano)
				}
			case time.Time:
				v = x.UTC().Format(time.RFC3339Nano)
			}
			parts = append(parts, fmt.Sprint(v))
		}
		lines[i] = strings.Join(parts, " | ")
	}
	return lines, nil
}

// TestCopyBothWays copies a SQLite database holding every kind of row to a fresh
// PostgreSQL database and that one to a fresh SQLite file: each copy holds the
// same rows, and new rows continue the source's ids.
func TestCopyBothWays(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.db")
	clock := &fakeClock{now: t0}
	e := &env{s: openStore(t, first, clock), clock: clock, dsn: first}
	w := buildRetentionWorld(t, e)
	// The newest dialog goes, so the id counter stands above the highest id.
	if p, err := e.s.PurgeDialogs(ctxT(t), []int64{w.endedLate}, clock.Now().Add(time.Hour)); err != nil || p.Dialogs != 1 {
		t.Fatalf("purge the newest dialog: %+v %v", p, err)
	}
	// A message waiting for its file (awaits_files), and a stored file.
	waiting := append1(t, e, photo("copy-photo", "79160000099", e))[0].Seq
	if err := e.s.SaveFile(ctxT(t), &FileRow{ID: "0a1b", EventID: &waiting, Name: "Фото.jpg", MIME: "image/jpeg", Size: 9,
		SHA256: "ab", Path: "0a/0a1b"}); err != nil {
		t.Fatal(err)
	}
	want := dump(t, e.s)
	if len(want["files"]) != 1 || !strings.HasSuffix(want["events"][len(want["events"])-1], "| true") {
		t.Fatalf("the source lacks the file or the waiting event: %v", want["files"])
	}

	pg := storetest.PostgresDSN(t)
	last := filepath.Join(dir, "last.db")
	lastDialog := w.endedLate // the last dialog id given out, though no longer stored
	for _, hop := range []struct{ from, to string }{{first, pg}, {pg, last}} {
		var seen []string
		counts, err := Copy(ctxT(t), hop.from, hop.to, nil, func(c TableCount) { seen = append(seen, c.Table) })
		if err != nil {
			t.Fatalf("copy %s → %s: %v", Describe(hop.from), Describe(hop.to), err)
		}
		if !slices.Equal(seen, tables) {
			t.Errorf("progress told %v, want %v", seen, tables)
		}
		s := openStore(t, hop.to, clock)
		got := dump(t, s)
		for _, c := range counts {
			if int64(len(got[c.Table])) != c.Rows {
				t.Errorf("%s: %d rows in the target, Copy counted %d", c.Table, len(got[c.Table]), c.Rows)
			}
		}
		for table, rows := range want {
			if !slices.Equal(got[table], rows) {
				t.Errorf("%s → %s: %s differs:\n got %q\nwant %q", Describe(hop.from), Describe(hop.to), table, got[table], rows)
			}
		}
		// A second copy into the same target is refused: it is no longer fresh.
		if _, err := Copy(ctxT(t), hop.from, hop.to, nil, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("copy into a full target: %v", err)
		}
		d := e.newDialogIn(t, s)
		if d.ID != lastDialog+1 {
			t.Errorf("a new dialog in %s got id %d, want %d: the id after the source's last", Describe(hop.to), d.ID, lastDialog+1)
		}
		lastDialog = d.ID
		want = dump(t, s) // the next hop copies the new dialog too
	}
}

// newDialogIn creates an active dialog in s.
func (e *env) newDialogIn(t *testing.T, s *GormStore) *Dialog {
	t.Helper()
	d := &Dialog{Dialog: dialog.Dialog{Flow: "f", State: "s"}}
	if err := s.Step(ctxT(t), func(tx StepTx) error { return tx.CreateDialog(d) }); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCopyRefusesARunningSource(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	openStore(t, src, &fakeClock{now: t0})
	release, err := Lock(src)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := Copy(ctxT(t), src, filepath.Join(t.TempDir(), "dst.db"), nil, nil); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("copy of a locked source: %v", err)
	}
}
