package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLock(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	path := filepath.Join(t.TempDir(), "data", "fixit.db")
	release, err := Lock(path + "?_pragma=busy_timeout(1)")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("the locked file: %v %v", fi, err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrInUse) {
		t.Errorf("second Lock: %v, want ErrInUse", err)
	}
	// The store opens a locked file as usual: the lock keeps out other fixit
	// processes, not SQLite.
	s := openStore(t, path, &fakeClock{now: t0})
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	release()
	again, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	again()
	if release, err := Lock("postgres://nobody@127.0.0.1:1/x"); err != nil {
		t.Errorf("Lock of a PostgreSQL URL: %v", err)
	} else {
		release()
	}
}
