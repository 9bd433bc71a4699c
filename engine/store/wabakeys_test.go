package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// upTo opens a database as the release with migrations up to version left it.
func upTo(version int) Option { return func(s *GormStore) { s.migrateUpTo = version } }

// TestMigrationConvertsWABAKeys fills a database as fixit before migration 5 kept
// it (keys waba:<wa_id>), then opens it again: without a business number the open
// is refused and nothing changes; with one, keys of dialogs and events are
// converted, WhatsApp dialogs get the number, and the dialog is found by its new key.
func TestMigrationConvertsWABAKeys(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn, clock := olderDatabase(t, db, func(old *GormStore) {
				// Rows as the older release wrote them (its columns only).
				for _, q := range []string{
					`INSERT INTO dialogs (id, flow, state, status, channel, contact_id, created_at, updated_at)
					VALUES (1, 'f', 's', 'active', 'waba', '79161234567', ?, ?)`,
					`INSERT INTO dialogs (id, flow, state, status, channel, contact_id, created_at, updated_at)
					VALUES (2, 'f', 's', 'active', 'telegram', '5', ?, ?)`,
					`INSERT INTO dialog_keys (key, dialog_id, active, created_at) VALUES ('waba:79161234567', 1, TRUE, ?)`,
				} {
					args := []any{dbTime(t0), dbTime(t0)}[:strings.Count(q, "?")]
					if err := old.db.Exec(q, args...).Error; err != nil {
						t.Fatal(err)
					}
				}
				if _, err := old.AppendEvents(ctxT(t), []event.Event{{Source: "waba", Type: "waba.message", At: t0, DedupeKey: "w1",
					Keys: []string{"waba:79161234567", "phone:79161234567"}}}); err != nil {
					t.Fatal(err)
				}
			})
			d, tg := &Dialog{Dialog: dialog.Dialog{ID: 1}}, &Dialog{Dialog: dialog.Dialog{ID: 2}}

			_, err := Open(ctxT(t), dsn, testLogger(t), WithClock(clock.Now))
			if !errors.Is(err, ErrWABANumberNeeded) {
				t.Fatalf("open without a number: %v, want ErrWABANumberNeeded", err)
			}

			s := openStore(t, dsn, clock, WithWABANumber("100200"))
			got, err := s.FindDialogByKeys(ctxT(t), []string{event.WABAKey("100200", "79161234567")})
			if err != nil || got == nil || got.ID != d.ID {
				t.Fatalf("dialog by its new key: %v, %v", got, err)
			}
			if got.BusinessNumber != "100200" {
				t.Errorf("business number %q, want 100200", got.BusinessNumber)
			}
			if other, _ := s.GetDialog(ctxT(t), tg.ID); other.BusinessNumber != "" {
				t.Errorf("a Telegram dialog got business number %q", other.BusinessNumber)
			}
			evs, err := s.PendingEvents(ctxT(t), 0, 10)
			if err != nil || len(evs) != 1 {
				t.Fatalf("pending events: %v, %v", evs, err)
			}
			if k := evs[0].Keys; len(k) != 2 || k[0] != "waba:100200:79161234567" || k[1] != "phone:79161234567" {
				t.Errorf("event keys %v", k)
			}
			if n := count(t, s, "dialog_keys", "key LIKE 'waba:%' AND key NOT LIKE 'waba:%:%'"); n != 0 {
				t.Errorf("%d old keys left", n)
			}
		})
	}
}

// TestMigrationWithoutWABAKeys: a database without WhatsApp keys needs no number.
func TestMigrationWithoutWABAKeys(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn, clock := olderDatabase(t, db, func(old *GormStore) {
				if _, err := old.AppendEvents(ctxT(t), []event.Event{{Source: "telegram", Type: "telegram.message", At: t0,
					DedupeKey: "t1", Keys: []string{"telegram:5"}}}); err != nil {
					t.Fatal(err)
				}
			})
			s := openStore(t, dsn, clock)
			if n := count(t, s, "schema_migrations", "version = 5"); n != 1 {
				t.Fatalf("migration 5 recorded %d times", n)
			}
		})
	}
}

// olderDatabase makes a database (SQLite or PostgreSQL) as the release before
// migration 5 left it, filled by fill, and returns it closed, with its clock.
func olderDatabase(t *testing.T, db string, fill func(old *GormStore)) (string, *fakeClock) {
	clock := &fakeClock{now: t0}
	dsn := freshDSN(t, db)
	s, err := Open(ctxT(t), dsn, testLogger(t), WithClock(clock.Now), upTo(4))
	if err != nil {
		t.Fatal(err)
	}
	fill(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dsn, clock
}

// freshDSN is a new, empty SQLite file or PostgreSQL database.
func freshDSN(t *testing.T, db string) string {
	if db == "postgres" {
		return storetest.PostgresDSN(t)
	}
	return filepath.Join(t.TempDir(), "fixit.db")
}

func count(t *testing.T, s *GormStore, table, cond string) int64 {
	t.Helper()
	var n int64
	if err := s.db.Raw("SELECT COUNT(*) FROM " + table + " WHERE " + cond).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}
