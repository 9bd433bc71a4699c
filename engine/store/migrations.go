package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// migration is one step of the schema's history. Versions are applied in order, once,
// each in its own transaction together with its schema_migrations row. Applied
// migrations are never edited: change the schema by appending a new one.
//
// The SQL is shared by both databases; {{ID}} and {{TIME}} expand per dialect.
// Dialect-specific statements go in sqliteOnly / postgresOnly.
type migration struct {
	version      int
	name         string
	stmts        []string
	sqliteOnly   []string
	postgresOnly []string
	// run, when set, converts existing rows after the statements, in the same
	// transaction (a conversion that needs the configuration: see WithWABANumber).
	run func(s *GormStore, tx *gorm.DB) error
}

// Advisory lock keys (PostgreSQL); arbitrary constants private to fixit.
const (
	// lockMigrate serializes migrations of replicas starting together.
	lockMigrate int64 = 0x66697869_74000001
	// lockInbox serializes inbox appends so that event sequence numbers commit in order.
	lockInbox int64 = 0x66697869_74000002
)

// migrations is the schema's history, oldest first.
var migrations = []migration{
	{
		version: 1,
		name:    "initial schema",
		stmts: []string{
			`CREATE TABLE flow_versions (
				hash       TEXT PRIMARY KEY,
				flow       TEXT NOT NULL,
				file       TEXT NOT NULL DEFAULT '',
				source     TEXT NOT NULL,
				created_at {{TIME}} NOT NULL
			)`,

			`CREATE TABLE dialogs (
				id            {{ID}},
				flow          TEXT NOT NULL,
				flow_hash     TEXT NOT NULL DEFAULT '',
				state         TEXT NOT NULL,
				status        TEXT NOT NULL
				              CHECK (status IN ('active', 'handoff', 'finished', 'abandoned', 'failed')),
				vars          TEXT NOT NULL DEFAULT '{}',
				channel       TEXT NOT NULL DEFAULT '',
				contact_id    TEXT NOT NULL DEFAULT '',
				phone         TEXT NOT NULL DEFAULT '',
				created_at    {{TIME}} NOT NULL,
				updated_at    {{TIME}} NOT NULL,
				last_event_id BIGINT NOT NULL DEFAULT 0,
				revision      BIGINT NOT NULL DEFAULT 1
			)`,
			`CREATE INDEX dialogs_flow_state ON dialogs (flow, state)`,
			`CREATE INDEX dialogs_status ON dialogs (status)`,

			`CREATE TABLE dialog_keys (
				id         {{ID}},
				key        TEXT NOT NULL,
				dialog_id  BIGINT NOT NULL REFERENCES dialogs (id) ON DELETE CASCADE,
				active     BOOLEAN NOT NULL DEFAULT TRUE,
				created_at {{TIME}} NOT NULL
			)`,
			// A key routes to at most one dialog at a time; ended dialogs keep theirs, inactive.
			`CREATE UNIQUE INDEX dialog_keys_active_key ON dialog_keys (key) WHERE active`,
			`CREATE INDEX dialog_keys_key ON dialog_keys (key)`,
			`CREATE INDEX dialog_keys_dialog ON dialog_keys (dialog_id)`,

			`CREATE TABLE events (
				id          {{ID}},
				dedupe_key  TEXT NOT NULL UNIQUE,
				source      TEXT NOT NULL,
				type        TEXT NOT NULL,
				at          {{TIME}} NOT NULL,
				received_at {{TIME}} NOT NULL,
				keys        TEXT NOT NULL DEFAULT '[]',
				contact     TEXT NOT NULL DEFAULT '{}',
				text        TEXT NOT NULL DEFAULT '',
				data        TEXT NOT NULL DEFAULT '{}',
				status      TEXT NOT NULL DEFAULT 'pending'
				            CHECK (status IN ('pending', 'processed', 'unrouted', 'failed')),
				dialog_id   BIGINT REFERENCES dialogs (id) ON DELETE SET NULL,
				error       TEXT NOT NULL DEFAULT '',
				attempts    INTEGER NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX events_status_id ON events (status, id)`,
			`CREATE INDEX events_source_status ON events (source, status)`,

			`CREATE TABLE history (
				id         {{ID}},
				dialog_id  BIGINT NOT NULL REFERENCES dialogs (id) ON DELETE CASCADE,
				at         {{TIME}} NOT NULL,
				kind       TEXT NOT NULL,
				event_id   BIGINT REFERENCES events (id) ON DELETE SET NULL,
				from_state TEXT NOT NULL DEFAULT '',
				to_state   TEXT NOT NULL DEFAULT '',
				detail     TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX history_dialog ON history (dialog_id, id)`,

			`CREATE TABLE timers (
				id         {{ID}},
				dialog_id  BIGINT NOT NULL REFERENCES dialogs (id) ON DELETE CASCADE,
				state      TEXT NOT NULL,
				name       TEXT NOT NULL DEFAULT '',
				due_at     {{TIME}} NOT NULL,
				status     TEXT NOT NULL DEFAULT 'pending'
				           CHECK (status IN ('pending', 'fired', 'cancelled')),
				created_at {{TIME}} NOT NULL
			)`,
			`CREATE INDEX timers_status_due ON timers (status, due_at)`,
			`CREATE INDEX timers_dialog ON timers (dialog_id, status)`,

			`CREATE TABLE outbox (
				id           {{ID}},
				dialog_id    BIGINT REFERENCES dialogs (id) ON DELETE SET NULL,
				kind         TEXT NOT NULL,
				params       TEXT NOT NULL DEFAULT '',
				status       TEXT NOT NULL DEFAULT 'pending'
				             CHECK (status IN ('pending', 'running', 'done', 'failed', 'dead')),
				attempts     INTEGER NOT NULL DEFAULT 0,
				next_at      {{TIME}} NOT NULL,
				last_error   TEXT NOT NULL DEFAULT '',
				error_code   TEXT NOT NULL DEFAULT '',
				result       TEXT NOT NULL DEFAULT '',
				created_at   {{TIME}} NOT NULL,
				updated_at   {{TIME}} NOT NULL,
				locked_until {{TIME}}
			)`,
			`CREATE INDEX outbox_status_next ON outbox (status, next_at)`,

			`CREATE TABLE contacts (
				channel         TEXT NOT NULL,
				contact_id      TEXT NOT NULL,
				last_inbound_at {{TIME}} NOT NULL,
				PRIMARY KEY (channel, contact_id)
			)`,
		},
	},
	{
		version: 2,
		name:    "dialog handoff and state entry time",
		stmts: []string{
			// Event types that end a handoff (JSON list), and when the current state was
			// entered (the interpreter's dialog.entered_at).
			`ALTER TABLE dialogs ADD COLUMN handoff_until TEXT NOT NULL DEFAULT '[]'`,
			`ALTER TABLE dialogs ADD COLUMN entered_at {{TIME}}`,
		},
	},
	{
		version: 3,
		name:    "outbox requeues",
		stmts: []string{
			// How many times an operator queued a dead or failed item again: each round
			// feeds its own result back to the dialog.
			`ALTER TABLE outbox ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0`,
		},
	},
	{
		version: 4,
		name:    "indexes of the references the retention purge deletes through",
		stmts: []string{
			// Deleting a dialog or an event makes the database find the rows that refer
			// to it (ON DELETE SET NULL); without an index on the referring column that
			// is a scan of the whole table for every row deleted. They also serve the
			// admin API's lists of a dialog's events and actions. An event is stored
			// without its dialog, so the partial index costs nothing until it is settled.
			`CREATE INDEX events_dialog ON events (dialog_id) WHERE dialog_id IS NOT NULL`,
			`CREATE INDEX outbox_dialog ON outbox (dialog_id)`,
			`CREATE INDEX history_event ON history (event_id)`,
		},
	},
	{
		version: 5,
		name:    "several WhatsApp numbers and delivery receipts",
		stmts: []string{
			// The business number (phone_number_id) a WhatsApp dialog's customer wrote
			// to; its replies leave from it.
			`ALTER TABLE dialogs ADD COLUMN business_number TEXT NOT NULL DEFAULT ''`,
			// A sent message's id (the wamid, or Telegram's message id) and how far it
			// got: '' (not a message, or not sent yet), sent, delivered, read, failed;
			// with a failed delivery's error code and title, and when it was reported.
			`ALTER TABLE outbox ADD COLUMN message_id TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE outbox ADD COLUMN delivery TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE outbox ADD COLUMN delivery_code TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE outbox ADD COLUMN delivery_error TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE outbox ADD COLUMN delivery_at {{TIME}}`,
			// A receipt finds its message by id.
			`CREATE INDEX outbox_message ON outbox (message_id) WHERE message_id <> ''`,
		},
		run: convertWABAKeys,
	},
	{
		version: 6,
		name:    "key scopes of alongside flows and event deliveries",
		stmts: []string{
			// A key routes to at most one live dialog per scope: '' is shared by the
			// ordinary flows, an alongside flow's dialogs bind in a scope named after
			// the flow. Existing keys are all ordinary.
			`ALTER TABLE dialog_keys ADD COLUMN scope TEXT NOT NULL DEFAULT ''`,
			`DROP INDEX dialog_keys_active_key`,
			`CREATE UNIQUE INDEX dialog_keys_active_scope_key ON dialog_keys (scope, key) WHERE active`,
			// The dialogs one event was applied to, when it went to more than the
			// one its row names (an alongside flow took it): each (event, dialog)
			// once, with its outcome.
			`CREATE TABLE event_deliveries (
				event_id  BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
				dialog_id BIGINT NOT NULL REFERENCES dialogs (id) ON DELETE CASCADE,
				flow      TEXT NOT NULL,
				scope     TEXT NOT NULL DEFAULT '',
				status    TEXT NOT NULL CHECK (status IN ('processed', 'failed')),
				started   BOOLEAN NOT NULL DEFAULT FALSE,
				error     TEXT NOT NULL DEFAULT '',
				at        {{TIME}} NOT NULL,
				PRIMARY KEY (event_id, dialog_id)
			)`,
			`CREATE INDEX event_deliveries_dialog ON event_deliveries (dialog_id)`,
		},
	},
	{
		version: 7,
		name:    "files of messages",
		stmts: []string{
			// A downloaded attachment of an inbound message: its content is a file in
			// the file store's folder (path, relative to it). Rows refer to their event
			// and dialog without a foreign key: retention deletes a file's row and
			// content together with its event's.
			`CREATE TABLE files (
				id         TEXT PRIMARY KEY,
				dialog_id  BIGINT,
				event_id   BIGINT,
				name       TEXT NOT NULL DEFAULT '',
				mime       TEXT NOT NULL DEFAULT '',
				size       BIGINT NOT NULL DEFAULT 0,
				sha256     TEXT NOT NULL DEFAULT '',
				path       TEXT NOT NULL,
				created_at {{TIME}} NOT NULL
			)`,
			`CREATE INDEX files_event ON files (event_id)`,
			`CREATE INDEX files_dialog ON files (dialog_id)`,
			// A message stored with files to fetch holds its contact's later events back
			// while it is pending; the partial index is empty unless one is.
			`ALTER TABLE events ADD COLUMN awaits_files BOOLEAN NOT NULL DEFAULT FALSE`,
			`CREATE INDEX events_awaiting_files ON events (id) WHERE awaits_files AND status = 'pending'`,
		},
	},
}

// expand replaces the dialect tokens of a migration statement.
//
// SQLite: AUTOINCREMENT keeps ids from ever being reused, so Seq stays monotonic;
// DATETIME makes the driver parse the stored text back into time.Time, and the UTC
// text it writes ("2006-01-02 15:04:05.999999999+00:00") compares in time order.
func (d dialect) expand(stmt string) string {
	switch d {
	case dialectPostgres:
		return strings.NewReplacer(
			"{{ID}}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
			"{{TIME}}", "TIMESTAMP WITH TIME ZONE",
		).Replace(stmt)
	default:
		return strings.NewReplacer(
			"{{ID}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
			"{{TIME}}", "DATETIME",
		).Replace(stmt)
	}
}

// migrate brings the schema up to date, applying each missing migration in its own
// transaction. On PostgreSQL every transaction first takes an advisory lock, so
// replicas starting together apply each migration exactly once.
func (s *GormStore) migrate(ctx context.Context) error {
	list := migrations
	if s.migrateUpTo > 0 {
		list = slices.DeleteFunc(slices.Clone(list), func(m migration) bool { return m.version > s.migrateUpTo })
	}
	for _, m := range list {
		applied, err := s.applyMigration(ctx, m)
		if err != nil {
			return fmt.Errorf("apply migration %d (%s): %w", m.version, m.name, err)
		}
		if applied {
			s.log.Info("applied database migration", "version", m.version, "name", m.name)
		}
	}
	var newest int
	if err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest).Error; err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if known := migrations[len(migrations)-1].version; newest > known {
		// A newer fixit has migrated this database (a rolling upgrade, or a rollback).
		// Migrations only add, so keep going, but say so.
		s.log.Warn("database schema is newer than this binary", "schema_version", newest, "binary_version", known)
	}
	return nil
}

// applyMigration applies m unless it is recorded as applied, and reports whether it did.
func (s *GormStore) applyMigration(ctx context.Context, m migration) (bool, error) {
	applied := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, lockMigrate).Error; err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
		}
		if err := tx.Exec(s.dialect.expand(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    BIGINT PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at {{TIME}} NOT NULL
		)`)).Error; err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var n int64
		if err := tx.Raw(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n).Error; err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if n > 0 {
			return nil
		}
		stmts := append([]string(nil), m.stmts...)
		if s.dialect == dialectPostgres {
			stmts = append(stmts, m.postgresOnly...)
		} else {
			stmts = append(stmts, m.sqliteOnly...)
		}
		for _, stmt := range stmts {
			if err := tx.Exec(s.dialect.expand(stmt)).Error; err != nil {
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
		if m.run != nil {
			if err := m.run(s, tx); err != nil {
				return err
			}
		}
		if err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, dbTime(s.now())).Error; err != nil {
			return fmt.Errorf("record migration: %w", err)
		}
		applied = true
		return nil
	})
	return applied, err
}

// firstLine names a failing statement in an error without quoting all of it.
func firstLine(stmt string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(stmt), "\n")
	return strings.TrimSuffix(strings.TrimSpace(line), "(")
}
