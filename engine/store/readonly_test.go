package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// TestReadOnly: a database opened ReadOnly beside the store that serves it reads
// what the server wrote and refuses to write; a file that is not there is an
// error and is not created; a schema of another version is refused, not migrated.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		served := openStore(t, dsn, &fakeClock{now: t0})
		if _, err := served.AppendEvents(ctx, []event.Event{{Source: "waba", Type: "waba.message", DedupeKey: "a", Keys: []string{}}}); err != nil {
			t.Fatal(err)
		}
		ro, err := Open(ctx, dsn, testLogger(t), ReadOnly())
		if err != nil {
			t.Fatalf("open read-only beside the server: %v", err)
		}
		defer ro.Close()
		evs, _, err := ro.ListEvents(ctx, EventFilter{}, Page{Limit: 10})
		if err != nil || len(evs) != 1 {
			t.Fatalf("read: %v %d events", err, len(evs))
		}
		if _, err := ro.AppendEvents(ctx, []event.Event{{Source: "waba", Type: "waba.message", DedupeKey: "b", Keys: []string{}}}); err == nil {
			t.Error("a read-only store wrote an event")
		}
		// The server goes on writing meanwhile.
		if _, err := served.AppendEvents(ctx, []event.Event{{Source: "waba", Type: "waba.message", DedupeKey: "c", Keys: []string{}}}); err != nil {
			t.Fatalf("the server's write beside a reader: %v", err)
		}
	})

	missing := filepath.Join(t.TempDir(), "typo", "fixit.db")
	if _, err := Open(ctx, missing, nil, ReadOnly()); err == nil {
		t.Error("a missing file opened")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Errorf("opening a missing file read-only made its folder: %v", err)
	}

	// A file of an earlier schema (the legacy fixture) is not migrated.
	old := filepath.Join(t.TempDir(), "old.db")
	copyTestFile(t, filepath.Join(legacyDir, "fixit.db"), old)
	before, err := os.ReadFile(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, old, nil, ReadOnly()); !errors.Is(err, ErrSchema) {
		t.Errorf("an earlier schema: %v, want ErrSchema", err)
	}
	if after, _ := os.ReadFile(old); string(after) != string(before) {
		t.Error("opening an earlier schema read-only changed the file")
	}
}
