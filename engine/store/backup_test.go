package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

func countsOf(t *testing.T, e *env) []TableCount {
	t.Helper()
	c, err := countRows(e.s.db.WithContext(ctxT(t)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A backup taken while steps commit is a sound database holding a consistent
// state; restoring it on the stopped database brings that state back, and keeps
// the replaced one beside it.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "fixit.db")
	clock := &fakeClock{now: t0}
	e := &env{s: openStore(t, dsn, clock), clock: clock, dsn: dsn}
	w := buildRetentionWorld(t, e)
	want := countsOf(t, e)

	// Writers keep committing while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.s.AppendEvents(ctxT(t), []event.Event{msg(fmt.Sprintf("during:%d", i), "79160000999", "x", t0)}); err != nil {
				t.Errorf("append during the backup: %v", err)
				return
			}
		}
	}()
	backup := filepath.Join(dir, "backups", "fixit-1.db")
	if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := Backup(ctxT(t), dsn, backup)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// The backup holds the state before the writers plus some of their events
	// (and their one contact): every other table exactly.
	for i, c := range got {
		if c.Table != want[i].Table || (c.Table != "events" && c.Table != "contacts" && c.Rows != want[i].Rows) || c.Rows < want[i].Rows {
			t.Errorf("backup %s: %d rows, want %d", c.Table, c.Rows, want[i].Rows)
		}
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v, want mode 0600", fi, err)
	}
	if _, err := os.Stat(backup + ".partial"); !os.IsNotExist(err) {
		t.Errorf("the partial file was left: %v", err)
	}
	if _, err := Backup(ctxT(t), dsn, backup); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a backup over an existing file: %v", err)
	}

	// Restoring needs the server stopped.
	_ = e.s.Close()
	release, err := Lock(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctxT(t), dsn, backup); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("restore while locked: %v", err)
	}
	release()

	restored, err := Restore(ctxT(t), dsn, backup)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(restored, got) {
		t.Errorf("restored %v, want the backup's %v", restored, got)
	}
	if _, err := os.Stat(dsn + ".pre-restore"); err != nil {
		t.Errorf("the replaced database was not kept: %v", err)
	}
	s2 := openStore(t, dsn, clock)
	if d, err := s2.GetDialog(ctxT(t), w.active); err != nil || d.Status != dialog.Active {
		t.Errorf("the active dialog after the restore: %+v %v", d, err)
	}
	if _, err := s2.AppendEvents(ctxT(t), []event.Event{msg("after-restore", "79160000999", "x", t0)}); err != nil {
		t.Errorf("append after the restore: %v", err)
	}
}

func TestBackupRefuses(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, dsn, dest, want string
	}{
		{"postgres", "postgres://x@127.0.0.1/db", filepath.Join(dir, "b.db"), "pg_dump"},
		{"missing", filepath.Join(dir, "nope.db"), filepath.Join(dir, "b.db"), "no such file"},
	}
	for _, c := range cases {
		if _, err := Backup(ctxT(t), c.dsn, c.dest); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// Not a fixit database: refused before anything is replaced.
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("not a database at all, not even close to one......................................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "fixit.db")
	s := openStore(t, target, &fakeClock{now: t0})
	_ = s.Close()
	before, _ := os.ReadFile(target)
	if _, err := Restore(ctxT(t), target, junk); err == nil {
		t.Error("restore from a file that is not a database succeeded")
	}
	if after, _ := os.ReadFile(target); string(after) != string(before) {
		t.Error("a refused restore changed the database")
	}
}
