package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/fixit-exchange/fixit/engine/event"
)

// dialect is the database behind a GormStore.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// sqlitePragmas are set on every SQLite connection through the DSN: WAL so readers of
// other processes (backups, the CLI) do not block the writer, a busy timeout for them,
// enforced foreign keys, and NORMAL sync, which in WAL mode survives a process crash
// (kill -9) without an fsync per commit. Checkpoints (which fsync) run in the
// background on a connection of their own (checkpointLoop), off the writer's path;
// wal_autocheckpoint stays as a backstop at 10,000 pages (40 MB) of WAL, should the
// background ones fall behind. Each connection caches up to 8 MiB of pages (SQLite's
// default is 2 MiB), which keeps a store of a million dialogs mostly off the disk
// at a bounded cost. Temporary storage in memory keeps the
// statement journals of savepoints (Steps) off the disk. _txlock=immediate takes the
// write lock at BEGIN, so a transaction never fails to upgrade a read lock.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
	"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(memory)" +
	"&_pragma=wal_autocheckpoint(10000)&_pragma=cache_size(-8192)&_txlock=immediate"

// maxRowsPerInsert bounds multi-row statements below both databases' limits on bound
// parameters (SQLite 32766, PostgreSQL 65535).
const maxRowsPerInsert = 500

// GormStore is the Store on SQLite or PostgreSQL through GORM.
type GormStore struct {
	db    *gorm.DB
	sqlDB *sql.DB
	// rdb serves reads made outside a transaction. On SQLite it is a pool of
	// read-only connections beside the single writer: in WAL mode readers do not
	// wait for the writer, so routing and the admin API go on while a step commits.
	// On PostgreSQL it is db.
	rdb    *gorm.DB
	rsqlDB *sql.DB
	// ckptStop ends the SQLite checkpointer; ckptDone is closed when it has.
	ckptStop, ckptDone chan struct{}
	ckptOnce           sync.Once
	dialect            dialect
	log                *slog.Logger
	now                func() time.Time
	readOnly           bool
	// wabaNumber converts WhatsApp keys of the old form (WithWABANumber).
	wabaNumber string
	// migrateUpTo, when not 0, stops the migrations after that version (tests of
	// a migration open a database as an older release left it).
	migrateUpTo int
	// stray remembers the messages whose receipts found no item (SQLite; nil on
	// PostgreSQL).
	stray *strayReceipts
}

var _ Store = (*GormStore)(nil)

// Option configures Open.
type Option func(*GormStore)

// WithClock makes the store read the time from now instead of time.Now. It stamps
// received_at, created_at, updated_at and applied_at; times that callers pass in
// (due times, outbox claims) are used as given.
func WithClock(now func() time.Time) Option {
	return func(s *GormStore) { s.now = now }
}

// ReadOnly opens an existing database only to read it, beside a server that may be
// serving it: a SQLite file must exist and its connections refuse writes; a
// PostgreSQL session is read-only. Nothing is migrated — the schema must be the
// one this binary knows (ErrSchema otherwise) — and no checkpointer runs.
func ReadOnly() Option { return func(s *GormStore) { s.readOnly = true } }

// ErrSchema means a database opened ReadOnly has another schema version than
// this binary's.
var ErrSchema = errors.New("schema version differs")

// Memory is the dsn of a SQLite database held in memory, gone when it is closed:
// the test world's store (`fixit test`, `fixit chat`, replay). Everything goes
// through its one connection.
const Memory = ":memory:"

// Open connects to the database named by dsn and migrates its schema. A dsn starting
// with postgres:// or postgresql:// is a PostgreSQL URL; Memory is a database in
// memory; anything else is the path of a SQLite file, whose directory is created
// when missing (query parameters after a '?' are passed to the driver after fixit's
// own).
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*GormStore, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &GormStore{log: logger, now: time.Now}
	for _, o := range opts {
		o(s)
	}

	var dialector, reader gorm.Dialector
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.dialect = dialectPostgres
		if s.readOnly {
			dsn = withParam(dsn, "default_transaction_read_only=on")
		}
		dialector = postgres.Open(dsn)
	} else if s.readOnly {
		path, _, _ := strings.Cut(dsn, "?")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		dialector = newSQLiteDialector(sqliteURI(path, "_pragma=query_only(1)"))
	} else if dsn == Memory {
		dialector = newSQLiteDialector("file::memory:?" + sqlitePragmas)
	} else {
		full, err := sqliteDSN(dsn)
		if err != nil {
			return nil, err
		}
		dialector = newSQLiteDialector(full)
		reader = newSQLiteDialector(full + "&_pragma=query_only(1)")
	}

	db, sqlDB, err := s.open(dialector)
	if err != nil {
		return nil, err
	}
	s.db, s.sqlDB, s.rdb, s.rsqlDB = db, sqlDB, db, sqlDB
	if s.dialect == dialectSQLite {
		// The single writer: every write queues for this one connection.
		s.stray = newStrayReceipts()
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(8)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		sqlDB.SetConnMaxLifetime(time.Hour)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if s.readOnly {
		if err := s.checkSchema(ctx); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	if reader != nil {
		// Opened after the migrations, so that the file is in WAL mode already.
		rdb, rsqlDB, err := s.open(reader)
		if err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		rsqlDB.SetMaxOpenConns(4)
		rsqlDB.SetMaxIdleConns(4)
		rsqlDB.SetConnMaxIdleTime(5 * time.Minute)
		s.rdb, s.rsqlDB = rdb, rsqlDB

		_, ckptDB, err := s.open(dialector)
		if err != nil {
			_ = rsqlDB.Close()
			_ = sqlDB.Close()
			return nil, err
		}
		ckptDB.SetMaxOpenConns(1)
		s.ckptStop, s.ckptDone = make(chan struct{}), make(chan struct{})
		go s.checkpointLoop(ckptDB, time.Second)
	}
	return s, nil
}

// open opens one GORM handle (a connection pool) on dialector.
func (s *GormStore) open(dialector gorm.Dialector) (*gorm.DB, *sql.DB, error) {
	db, err := gorm.Open(dialector, &gorm.Config{
		// Statements carry customer text; the store returns errors and callers log them.
		Logger:                 gormlogger.Discard,
		SkipDefaultTransaction: true,
		// No PrepareStmt: GORM prepares a missing statement while holding its cache's
		// lock, and with SQLite's single connection held by a transaction that waits
		// for the same lock, the two deadlock. It would save nothing on SQLite
		// either: the driver's prepared statement is its SQL text, compiled again
		// on every use.
		NowFunc: func() time.Time { return dbTime(s.now()) },
	})
	if err != nil {
		// Never print dsn: a PostgreSQL URL may hold a password.
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return db, sqlDB, nil
}

// sqliteDSN turns a file path into the driver's DSN with fixit's pragmas, creating the
// file's directory.
func sqliteDSN(dsn string) (string, error) {
	path, userParams, _ := strings.Cut(dsn, "?")
	if path == "" {
		return "", errors.New("open database: empty SQLite path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", fmt.Errorf("create database directory %s: %w", dir, err)
		}
	}
	return sqliteURI(path, userParams), nil
}

// withParam adds a query parameter to a URL-shaped DSN.
func withParam(dsn, param string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}

// checkSchema requires the database's schema version to be this binary's.
func (s *GormStore) checkSchema(ctx context.Context) error {
	var newest int
	if err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest).Error; err != nil {
		return fmt.Errorf("read schema version (is it a fixit database?): %w", err)
	}
	switch known := migrations[len(migrations)-1].version; {
	case newest < known:
		return fmt.Errorf("the database's schema is version %d, this fixit's %d (a server of this version migrates it when it starts): %w",
			newest, known, ErrSchema)
	case newest > known:
		return fmt.Errorf("the database's schema is version %d, newer than this fixit's %d: use the fixit that serves it: %w",
			newest, known, ErrSchema)
	}
	return nil
}

// Close releases the database.
func (s *GormStore) Close() error {
	if s.ckptStop != nil {
		s.ckptOnce.Do(func() { close(s.ckptStop) })
		<-s.ckptDone
	}
	if s.rsqlDB != s.sqlDB {
		_ = s.rsqlDB.Close()
	}
	if err := s.sqlDB.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// checkpointLoop copies the WAL's committed pages into the SQLite file every
// period with a PASSIVE checkpoint, which never blocks the writer or the readers,
// on db (a connection of its own), until Close. It owns db.
func (s *GormStore) checkpointLoop(db *sql.DB, period time.Duration) {
	defer close(s.ckptDone)
	defer db.Close()
	tick := time.NewTicker(period)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-s.ckptStop:
			return
		case <-tick.C:
		}
		_, err := db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		if err != nil && !failing {
			s.log.Warn("SQLite checkpoint failed; the WAL grows until one succeeds", "err", err)
		}
		failing = err != nil
	}
}

// Ping checks that the database answers.
func (s *GormStore) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// conn is the store's handle bound to ctx.
func (s *GormStore) conn(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx)
}

// read is the handle for reads outside a transaction, bound to ctx.
func (s *GormStore) read(ctx context.Context) *gorm.DB {
	return s.rdb.WithContext(ctx)
}

// ---------------------------------------------------------------------------------
// Inbox

const eventColumns = `id, dedupe_key, source, type, at, received_at, keys, contact, text, data,
	status, dialog_id, error, attempts`

type eventRow struct {
	ID         int64     `gorm:"column:id"`
	DedupeKey  string    `gorm:"column:dedupe_key"`
	Source     string    `gorm:"column:source"`
	Type       string    `gorm:"column:type"`
	At         time.Time `gorm:"column:at"`
	ReceivedAt time.Time `gorm:"column:received_at"`
	Keys       string    `gorm:"column:keys"`
	Contact    string    `gorm:"column:contact"`
	Text       string    `gorm:"column:text"`
	Data       string    `gorm:"column:data"`
	Status     string    `gorm:"column:status"`
	DialogID   *int64    `gorm:"column:dialog_id"`
	Error      string    `gorm:"column:error"`
	Attempts   int       `gorm:"column:attempts"`
}

func (r *eventRow) toEvent() (Event, error) {
	e := Event{
		Event: event.Event{
			ID:        strconv.FormatInt(r.ID, 10),
			Source:    r.Source,
			Type:      r.Type,
			At:        r.At.UTC(),
			DedupeKey: r.DedupeKey,
			Text:      r.Text,
		},
		Seq:        r.ID,
		Status:     EventStatus(r.Status),
		DialogID:   r.DialogID,
		Error:      r.Error,
		Attempts:   r.Attempts,
		ReceivedAt: r.ReceivedAt.UTC(),
	}
	if err := json.Unmarshal([]byte(r.Keys), &e.Keys); err != nil {
		return Event{}, fmt.Errorf("decode keys of event %d: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Contact), &e.Contact); err != nil {
		return Event{}, fmt.Errorf("decode contact of event %d: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Data), &e.Data); err != nil {
		return Event{}, fmt.Errorf("decode data of event %d: %w", r.ID, err)
	}
	return e, nil
}

func toEvents(rows []eventRow) ([]Event, error) {
	out := make([]Event, 0, len(rows))
	for i := range rows {
		e, err := rows[i].toEvent()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// encodedEvent is one event ready for insertion: its (final) dedupe key and the
// values of the insert's columns.
type encodedEvent struct {
	key  string
	args []any
}

// eventInsertColumns and eventInsertPlaceholders must list the same columns as
// encodeEvent's values.
const (
	eventInsertColumns      = `dedupe_key, source, type, at, received_at, keys, contact, text, data, status`
	eventInsertPlaceholders = `(?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`
)

func encodeEvent(e *event.Event, key string, receivedAt time.Time) (encodedEvent, error) {
	keys := e.Keys
	if keys == nil {
		keys = []string{}
	}
	keysJSON, err := encodeJSON(keys)
	if err != nil {
		return encodedEvent{}, fmt.Errorf("encode keys: %w", err)
	}
	contactJSON, err := encodeJSON(e.Contact)
	if err != nil {
		return encodedEvent{}, fmt.Errorf("encode contact: %w", err)
	}
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	dataJSON, err := encodeJSON(data)
	if err != nil {
		return encodedEvent{}, fmt.Errorf("encode data: %w", err)
	}
	return encodedEvent{key: key, args: []any{
		key, cleanText(e.Source), cleanText(e.Type), dbTime(e.At), receivedAt,
		keysJSON, contactJSON, cleanText(e.Text), dataJSON,
	}}, nil
}

// contactRef names a contact of a channel.
type contactRef struct{ channel, id string }

// inboundContact returns the contact whose customer-service window an event opens:
// a message the customer sent us on WhatsApp or Telegram.
func inboundContact(e *event.Event) (contactRef, bool) {
	switch e.Type {
	case event.TypeWABAMessage, event.TypeTelegramMessage, event.TypeTelegramCallback:
	default:
		return contactRef{}, false
	}
	if e.Contact.ID == "" {
		return contactRef{}, false
	}
	channel := cmp.Or(e.Contact.Channel, e.Source)
	return contactRef{cleanText(channel), cleanText(e.Contact.ID)}, true
}

// InboundAt returns the contact (channel and id) whose customer-service window an
// event opens, and the time it opens it from as AppendEvents records it: the
// event's time, or now when it has none or is ahead of now (a sender's clock ahead
// of ours must not stretch the window). ok is false for an event that opens none.
func InboundAt(e *event.Event, now time.Time) (channel, id string, at time.Time, ok bool) {
	c, ok := inboundContact(e)
	if !ok {
		return "", "", time.Time{}, false
	}
	at, now = dbTime(e.At), dbTime(now)
	if at.IsZero() || at.After(now) {
		at = now
	}
	return c.channel, c.id, at, true
}

// AppendEvents stores events in one transaction; see Store.AppendEvents.
//
// On PostgreSQL the transaction takes an advisory lock first, so appends commit one at
// a time in Seq order: a reader that has seen Seq n will never later see a new event
// below n. Batching many requests' events into one call amortizes that lock and the
// commit.
func (s *GormStore) AppendEvents(ctx context.Context, events []event.Event) ([]AppendResult, error) {
	if slices.ContainsFunc(events, func(e event.Event) bool { return event.HasFetch(&e) }) {
		// Files to fetch: their downloads are queued in the same transaction.
		var res []AppendResult
		err := s.Step(ctx, func(tx StepTx) error {
			var err error
			res, err = tx.AppendEvents(events)
			return err
		})
		return res, err
	}
	return s.appendEvents(events, s.conn(ctx).Transaction)
}

// appendEvents encodes events, then inserts them through run: a new transaction
// (AppendEvents) or the caller's (StepTx.AppendEvents).
func (s *GormStore) appendEvents(events []event.Event, run func(func(*gorm.DB) error, ...*sql.TxOptions) error) ([]AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	now := dbTime(s.now())
	keyOf := make([]string, len(events))
	first := make(map[string]int, len(events)) // dedupe key → index of its first event
	fresh := make([]encodedEvent, 0, len(events))
	lastInbound := map[contactRef]time.Time{}
	for i := range events {
		e := &events[i]
		key := cleanText(e.DedupeKey)
		if key == "" {
			key = generatedDedupeKey()
		}
		keyOf[i] = key
		if _, dup := first[key]; dup {
			continue
		}
		first[key] = i
		enc, err := encodeEvent(e, key, now)
		if err != nil {
			return nil, fmt.Errorf("append event %d (%s %q): %w", i, e.Type, key, err)
		}
		fresh = append(fresh, enc)
		if channel, id, at, ok := InboundAt(e, now); ok {
			if c := (contactRef{channel, id}); at.After(lastInbound[c]) {
				lastInbound[c] = at
			}
		}
	}

	seqOf := make(map[string]int64, len(fresh))
	inserted := make(map[string]bool, len(fresh))
	err := run(func(tx *gorm.DB) error { return s.insertFresh(tx, fresh, lastInbound, seqOf, inserted) })
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}

	results := make([]AppendResult, len(events))
	for i, key := range keyOf {
		seq, ok := seqOf[key]
		if !ok {
			return nil, fmt.Errorf("append %d events: event %q neither inserted nor found", len(events), key)
		}
		results[i] = AppendResult{Seq: seq, Duplicate: first[key] != i || !inserted[key]}
	}
	return results, nil
}

// insertFresh inserts the encoded events and finds the stored ones of duplicates.
//
// On PostgreSQL it takes the inbox's advisory lock first, so appends commit one at
// a time in Seq order: a reader that has seen Seq n will never later see a new event
// below n.
func (s *GormStore) insertFresh(tx *gorm.DB, fresh []encodedEvent, lastInbound map[contactRef]time.Time,
	seqOf map[string]int64, inserted map[string]bool) error {
	if s.dialect == dialectPostgres {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, lockInbox).Error; err != nil {
			return fmt.Errorf("take inbox lock: %w", err)
		}
	}
	for chunk := range slices.Chunk(fresh, maxRowsPerInsert) {
		if err := s.insertEvents(tx, chunk, seqOf, inserted); err != nil {
			return err
		}
	}
	var existing []string
	for _, enc := range fresh {
		if !inserted[enc.key] {
			existing = append(existing, enc.key)
		}
	}
	for chunk := range slices.Chunk(existing, maxRowsPerInsert) {
		var rows []struct {
			ID        int64  `gorm:"column:id"`
			DedupeKey string `gorm:"column:dedupe_key"`
		}
		if err := tx.Raw(`SELECT id, dedupe_key FROM events WHERE dedupe_key IN ?`, chunk).Scan(&rows).Error; err != nil {
			return fmt.Errorf("look up duplicate events: %w", err)
		}
		for _, r := range rows {
			seqOf[r.DedupeKey] = r.ID
		}
	}
	return upsertLastInbound(tx, lastInbound)
}

// insertEvents inserts one chunk with a single statement; rows whose dedupe key exists
// are skipped by ON CONFLICT and come back from RETURNING only when inserted. One
// event on SQLite (a webhook's message, an action's result) skips RETURNING, which
// costs SQLite a temporary table: the last insert rowid is its Seq, and a duplicate
// changes no row.
func (s *GormStore) insertEvents(tx *gorm.DB, chunk []encodedEvent, seqOf map[string]int64, inserted map[string]bool) error {
	if len(chunk) == 1 && s.dialect == dialectSQLite {
		res, err := direct(tx, `INSERT INTO events (`+eventInsertColumns+`) VALUES `+eventInsertPlaceholders+`
			ON CONFLICT (dedupe_key) DO NOTHING`, chunk[0].args)
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("insert event: %w", err)
		} else if n == 0 {
			return nil // a duplicate: looked up with the others
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		seqOf[chunk[0].key], inserted[chunk[0].key] = id, true
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO events (` + eventInsertColumns + `) VALUES `)
	args := make([]any, 0, len(chunk)*len(chunk[0].args))
	for i, enc := range chunk {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(eventInsertPlaceholders)
		args = append(args, enc.args...)
	}
	q.WriteString(` ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key`)
	var rows []struct {
		ID        int64  `gorm:"column:id"`
		DedupeKey string `gorm:"column:dedupe_key"`
	}
	if err := tx.Raw(q.String(), args...).Scan(&rows).Error; err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	for _, r := range rows {
		seqOf[r.DedupeKey] = r.ID
		inserted[r.DedupeKey] = true
	}
	return nil
}

// upsertLastInbound moves contacts' last inbound times forward, never back.
func upsertLastInbound(tx *gorm.DB, last map[contactRef]time.Time) error {
	if len(last) == 0 {
		return nil
	}
	refs := make([]contactRef, 0, len(last))
	for c := range last {
		refs = append(refs, c)
	}
	// A fixed order keeps concurrent upserts from deadlocking on PostgreSQL.
	slices.SortFunc(refs, func(a, b contactRef) int {
		return cmp.Or(cmp.Compare(a.channel, b.channel), cmp.Compare(a.id, b.id))
	})
	for chunk := range slices.Chunk(refs, maxRowsPerInsert) {
		var q strings.Builder
		q.WriteString(`INSERT INTO contacts (channel, contact_id, last_inbound_at) VALUES `)
		args := make([]any, 0, 3*len(chunk))
		for i, c := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, c.channel, c.id, last[c])
		}
		q.WriteString(` ON CONFLICT (channel, contact_id) DO UPDATE SET last_inbound_at = excluded.last_inbound_at
			WHERE excluded.last_inbound_at > contacts.last_inbound_at`)
		if err := tx.Exec(q.String(), args...).Error; err != nil {
			return fmt.Errorf("update contacts' last inbound time: %w", err)
		}
	}
	return nil
}

// PendingEvents returns pending events after afterSeq in Seq order; see Store.PendingEvents.
func (s *GormStore) PendingEvents(ctx context.Context, afterSeq int64, limit int) ([]Event, error) {
	var rows []eventRow
	err := s.read(ctx).Raw(`SELECT `+eventColumns+` FROM events
		WHERE status = 'pending' AND id > ? ORDER BY id`+limitClause(limit), afterSeq).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read pending events: %w", err)
	}
	return toEvents(rows)
}

// GetEvent returns one event, or ErrNotFound.
func (s *GormStore) GetEvent(ctx context.Context, seq int64) (*Event, error) {
	var rows []eventRow
	if err := s.read(ctx).Raw(`SELECT `+eventColumns+` FROM events WHERE id = ?`, seq).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read event %d: %w", seq, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read event %d: %w", seq, ErrNotFound)
	}
	e, err := rows[0].toEvent()
	return &e, err
}

// ---------------------------------------------------------------------------------
// Dialogs

const dialogColumns = `id, flow, flow_hash, state, status, vars, channel, contact_id, phone,
	created_at, updated_at, last_event_id, revision, handoff_until, entered_at, business_number`

type dialogRow struct {
	ID          int64      `gorm:"column:id"`
	Flow        string     `gorm:"column:flow"`
	FlowHash    string     `gorm:"column:flow_hash"`
	State       string     `gorm:"column:state"`
	Status      string     `gorm:"column:status"`
	Vars        string     `gorm:"column:vars"`
	Channel     string     `gorm:"column:channel"`
	ContactID   string     `gorm:"column:contact_id"`
	Phone       string     `gorm:"column:phone"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	UpdatedAt   time.Time  `gorm:"column:updated_at"`
	LastEventID int64      `gorm:"column:last_event_id"`
	Revision    int64      `gorm:"column:revision"`
	Handoff     string     `gorm:"column:handoff_until"`
	EnteredAt   *time.Time `gorm:"column:entered_at"`
	Business    string     `gorm:"column:business_number"`
}

func (r *dialogRow) toDialog() (Dialog, error) {
	d := Dialog{
		Dialog: dialog.Dialog{
			ID:        r.ID,
			Flow:      r.Flow,
			FlowHash:  r.FlowHash,
			State:     r.State,
			Status:    dialog.Status(r.Status),
			Channel:   r.Channel,
			ContactID: r.ContactID,
			Phone:     r.Phone,
			CreatedAt: r.CreatedAt.UTC(),
			// Fixed at creation, so not among the stored columns UpdateDialog compares.
			BusinessNumber: r.Business,
		},
		UpdatedAt:   r.UpdatedAt.UTC(),
		LastEventID: r.LastEventID,
		Revision:    r.Revision,
	}
	if err := json.Unmarshal([]byte(r.Vars), &d.Vars); err != nil {
		return Dialog{}, fmt.Errorf("decode vars of dialog %d: %w", r.ID, err)
	}
	if r.Handoff != "" && r.Handoff != "[]" {
		if err := json.Unmarshal([]byte(r.Handoff), &d.HandoffUntil); err != nil {
			return Dialog{}, fmt.Errorf("decode handoff of dialog %d: %w", r.ID, err)
		}
	}
	d.stored = &storedColumns{flowHash: r.FlowHash, state: r.State, status: r.Status, vars: r.Vars, channel: r.Channel,
		contactID: r.ContactID, phone: r.Phone, handoff: r.Handoff}
	if r.EnteredAt != nil {
		d.EnteredAt = r.EnteredAt.UTC()
		d.stored.enteredAt = d.EnteredAt
	}
	return d, nil
}

// getDialog reads one dialog through db, with an optional locking suffix.
func getDialog(db *gorm.DB, id int64, suffix string) (*Dialog, error) {
	var rows []dialogRow
	if err := db.Raw(`SELECT `+dialogColumns+` FROM dialogs WHERE id = ?`+suffix, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read dialog %d: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read dialog %d: %w", id, ErrNotFound)
	}
	d, err := rows[0].toDialog()
	return &d, err
}

// GetDialog returns a dialog, or ErrNotFound.
func (s *GormStore) GetDialog(ctx context.Context, id int64) (*Dialog, error) {
	return getDialog(s.read(ctx), id, "")
}

// LoadDialog returns a dialog with its active keys (in Keys), or ErrNotFound.
func (s *GormStore) LoadDialog(ctx context.Context, id int64) (*Dialog, error) {
	d, err := s.GetDialog(ctx, id)
	if err != nil {
		return nil, err
	}
	keys, err := s.DialogKeys(ctx, id)
	if err != nil {
		return nil, err
	}
	d.Keys = ActiveKeys(keys)
	return d, nil
}

// ActiveKeys returns the active keys of a dialog's key list, in order.
func ActiveKeys(keys []DialogKey) []string {
	var out []string
	for _, k := range keys {
		if k.Active {
			out = append(out, k.Key)
		}
	}
	return out
}

// FindDialogByKeys returns the live dialog of the first key bound in the ordinary
// scope; see Store.FindDialogByKeys.
func (s *GormStore) FindDialogByKeys(ctx context.Context, keys []string) (*Dialog, error) {
	clean := cleanKeys(keys)
	if len(clean) == 0 {
		return nil, nil
	}
	var rows []struct {
		BoundKey string    `gorm:"column:bound_key"`
		Dialog   dialogRow `gorm:"embedded"`
	}
	err := s.read(ctx).Raw(`SELECT k.key AS bound_key, `+prefixed("d.", dialogColumns)+`
		FROM dialog_keys k JOIN dialogs d ON d.id = k.dialog_id
		WHERE k.active AND k.scope = '' AND k.key IN ? AND d.status IN ('active', 'handoff')`, clean).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("find dialog by keys: %w", err)
	}
	best := firstBound(clean, len(rows), func(i int) string { return rows[i].BoundKey })
	if best < 0 {
		return nil, nil
	}
	d, err := rows[best].Dialog.toDialog()
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// RouteKeys returns what routing needs of the live dialog bound to the first of
// keys that is bound in the ordinary scope, or nil when none is; see Store.RouteKeys.
// Every event no cached dialog claims is routed through it, so it reads four
// columns, not the dialog: the driver compiles each statement it runs, and the
// longer one cost five times as much.
func (s *GormStore) RouteKeys(ctx context.Context, keys []string) (*DialogRoute, error) {
	clean := cleanKeys(keys)
	if len(clean) == 0 {
		return nil, nil
	}
	var rows []struct {
		Key            string `gorm:"column:key"`
		ID             int64  `gorm:"column:id"`
		Channel        string `gorm:"column:channel"`
		BusinessNumber string `gorm:"column:business_number"`
	}
	err := s.read(ctx).Raw(`SELECT k.key, d.id, d.channel, d.business_number
		FROM dialog_keys k JOIN dialogs d ON d.id = k.dialog_id
		WHERE k.active AND k.scope = '' AND k.key IN ? AND d.status IN ('active', 'handoff')`, clean).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("route by keys: %w", err)
	}
	best := firstBound(clean, len(rows), func(i int) string { return rows[i].Key })
	if best < 0 {
		return nil, nil
	}
	r := rows[best]
	return &DialogRoute{ID: r.ID, Channel: r.Channel, BusinessNumber: r.BusinessNumber}, nil
}

// firstBound returns which of n rows holds the key that comes first in keys (the
// first key that is bound wins), key(i) being row i's; -1 when n is 0.
func firstBound(keys []string, n int, key func(int) string) int {
	best := -1
	for i := range n {
		if best < 0 || slices.Index(keys, key(i)) < slices.Index(keys, key(best)) {
			best = i
		}
	}
	return best
}

// cleanKeys returns keys as stored, without the empty ones.
func cleanKeys(keys []string) []string {
	clean := make([]string, 0, len(keys))
	for _, k := range keys {
		if k != "" {
			clean = append(clean, cleanText(k))
		}
	}
	return clean
}

// prefixed qualifies every column of a column list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// DialogKeys returns every key ever bound to a dialog, oldest first.
func (s *GormStore) DialogKeys(ctx context.Context, dialogID int64) ([]DialogKey, error) {
	var rows []struct {
		Key       string    `gorm:"column:key"`
		DialogID  int64     `gorm:"column:dialog_id"`
		Active    bool      `gorm:"column:active"`
		Scope     string    `gorm:"column:scope"`
		CreatedAt time.Time `gorm:"column:created_at"`
	}
	if err := s.read(ctx).Raw(`SELECT key, dialog_id, active, scope, created_at FROM dialog_keys
		WHERE dialog_id = ? ORDER BY id`, dialogID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read keys of dialog %d: %w", dialogID, err)
	}
	out := make([]DialogKey, len(rows))
	for i, r := range rows {
		out[i] = DialogKey{Key: r.Key, DialogID: r.DialogID, Active: r.Active, Scope: r.Scope, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// Step runs fn in one transaction; see Store.Step.
func (s *GormStore) Step(ctx context.Context, fn func(tx StepTx) error) error {
	return s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		stx := s.newStepTx(tx)
		if err := fn(stx); err != nil {
			return err
		}
		return stx.flush()
	})
}

// Steps runs fns in one transaction, each inside a savepoint; see Store.Steps.
func (s *GormStore) Steps(ctx context.Context, fns []func(tx StepTx) error) []error {
	errs := make([]error, len(fns))
	if len(fns) == 1 {
		errs[0] = s.Step(ctx, fns[0])
		return errs
	}
	// First all together, without savepoints: a savepoint makes SQLite copy every
	// page a step changes first into a journal of its own, and they cost a tenth of
	// the end-to-end throughput. Steps rarely fail; when one does, the whole
	// transaction is rolled back and the batch runs again, each step in a savepoint.
	failed := false
	err := s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		stx := s.newStepTx(tx)
		for _, fn := range fns {
			if err := fn(stx); err != nil {
				failed = true
				return err
			}
		}
		if err := stx.flush(); err != nil {
			failed = true // a kept write of some step failed: find whose
			return err
		}
		return nil
	})
	if err == nil {
		return errs
	}
	if !failed {
		return fillErrs(errs, err) // begin or commit failed: nothing committed
	}
	err = s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		stx := s.newStepTx(tx)
		for i, fn := range fns {
			if err := tx.Exec(`SAVEPOINT step`).Error; err != nil {
				return fmt.Errorf("begin step %d of %d: %w", i+1, len(fns), err)
			}
			if errs[i] = fn(stx); errs[i] == nil {
				errs[i] = stx.flush()
			}
			if errs[i] != nil {
				if stx.w != nil {
					stx.w.reset()
				}
				if err := tx.Exec(`ROLLBACK TO SAVEPOINT step`).Error; err != nil {
					return fmt.Errorf("roll back step %d of %d: %w", i+1, len(fns), err)
				}
			}
			if err := tx.Exec(`RELEASE SAVEPOINT step`).Error; err != nil {
				return fmt.Errorf("end step %d of %d: %w", i+1, len(fns), err)
			}
		}
		return nil
	})
	if err != nil {
		return fillErrs(errs, err)
	}
	return errs
}

// fillErrs gives err to every step that had succeeded: nothing was committed.
func fillErrs(errs []error, err error) []error {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// SingleWriter reports whether writes go through one connection (SQLite).
func (s *GormStore) SingleWriter() bool { return s.dialect == dialectSQLite }

// execSQL runs a write on db (a transaction, or the pool) and returns how many rows
// it changed. On SQLite it goes straight to the connection and skips GORM's
// statement building (these writes are the hot path of the single writer);
// PostgreSQL goes through GORM, which numbers the ? placeholders.
func (s *GormStore) execSQL(db *gorm.DB, query string, args ...any) (int64, error) {
	if s.dialect == dialectSQLite {
		res, err := direct(db, query, args)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	res := db.Exec(query, args...)
	return res.RowsAffected, res.Error
}

// direct runs a statement with ? placeholders on db's connection pool or
// transaction, bypassing GORM (SQLite only: the driver takes ? as they are).
func direct(db *gorm.DB, query string, args []any) (sql.Result, error) {
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return db.Statement.ConnPool.ExecContext(ctx, query, args...)
}

// ---------------------------------------------------------------------------------
// Timers

const timerColumns = `id, dialog_id, state, name, due_at, status, created_at`

type timerRow struct {
	ID        int64     `gorm:"column:id"`
	DialogID  int64     `gorm:"column:dialog_id"`
	State     string    `gorm:"column:state"`
	Name      string    `gorm:"column:name"`
	DueAt     time.Time `gorm:"column:due_at"`
	Status    string    `gorm:"column:status"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

func toTimers(rows []timerRow) []Timer {
	out := make([]Timer, len(rows))
	for i, r := range rows {
		out[i] = Timer{
			ID: r.ID, DialogID: r.DialogID, State: r.State, Name: r.Name,
			DueAt: r.DueAt.UTC(), Status: TimerStatus(r.Status), CreatedAt: r.CreatedAt.UTC(),
		}
	}
	return out
}

// DueTimers returns pending timers due at or before now, earliest first.
//
// Several replicas may read the same timers; StepTx.FireTimer's conditional update
// lets exactly one of them fire each.
func (s *GormStore) DueTimers(ctx context.Context, now time.Time, limit int) ([]Timer, error) {
	var rows []timerRow
	err := s.read(ctx).Raw(`SELECT `+timerColumns+` FROM timers
		WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, id`+limitClause(limit), dbTime(now)).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read due timers: %w", err)
	}
	return toTimers(rows), nil
}

// ---------------------------------------------------------------------------------
// Outbox

const outboxColumns = `id, dialog_id, kind, params, status, attempts, next_at, last_error, error_code,
	result, created_at, updated_at, locked_until, requeues, message_id, delivery, delivery_code, delivery_error,
	delivery_at`

type outboxRow struct {
	ID          int64      `gorm:"column:id"`
	DialogID    *int64     `gorm:"column:dialog_id"`
	Kind        string     `gorm:"column:kind"`
	Params      string     `gorm:"column:params"`
	Status      string     `gorm:"column:status"`
	Attempts    int        `gorm:"column:attempts"`
	NextAt      time.Time  `gorm:"column:next_at"`
	LastError   string     `gorm:"column:last_error"`
	ErrorCode   string     `gorm:"column:error_code"`
	Result      string     `gorm:"column:result"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	UpdatedAt   time.Time  `gorm:"column:updated_at"`
	LockedUntil *time.Time `gorm:"column:locked_until"`
	Requeues    int        `gorm:"column:requeues"`
	MessageID   string     `gorm:"column:message_id"`
	Delivery    string     `gorm:"column:delivery"`
	DelivCode   string     `gorm:"column:delivery_code"`
	DelivError  string     `gorm:"column:delivery_error"`
	DeliveryAt  *time.Time `gorm:"column:delivery_at"`
}

func toOutbox(rows []outboxRow) []OutboxItem {
	out := make([]OutboxItem, len(rows))
	for i, r := range rows {
		out[i] = OutboxItem{
			ID: r.ID, DialogID: r.DialogID, Kind: r.Kind, Params: toRaw(r.Params),
			Status: OutboxStatus(r.Status), Attempts: r.Attempts, NextAt: r.NextAt.UTC(),
			LastError: r.LastError, ErrorCode: r.ErrorCode, Result: toRaw(r.Result),
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), LockedUntil: fromNullTime(r.LockedUntil),
			Requeues: r.Requeues,
			Delivery: Delivery{MessageID: r.MessageID, Status: DeliveryStatus(r.Delivery), Code: r.DelivCode,
				Error: r.DelivError, At: fromNullTime(r.DeliveryAt)},
		}
	}
	return out
}

// ClaimOutbox claims due items for delivery; see Store.ClaimOutbox.
//
// On PostgreSQL the candidate rows are locked with FOR UPDATE SKIP LOCKED, so
// concurrent claimers on any replica split the work and never share an item; on SQLite
// the single connection serializes claims.
func (s *GormStore) ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxItem, error) {
	var items []OutboxItem
	err := s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		items, err = s.claimOutbox(tx, now, limit, lease)
		return err
	})
	return items, err
}

func (s *GormStore) claimOutbox(tx *gorm.DB, now time.Time, limit int, lease time.Duration) ([]OutboxItem, error) {
	if limit <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		return nil, fmt.Errorf("claim outbox: lease must be positive, got %s", lease)
	}
	now = dbTime(now)
	lock := ""
	if s.dialect == dialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// One statement picks the due items and marks them running. The pick is a
	// materialized CTE: as a plain IN (subquery) PostgreSQL's planner may run the
	// subquery more than once and so update more rows than the limit.
	var rows []outboxRow
	if err := tx.Raw(`WITH picked AS MATERIALIZED (SELECT id FROM outbox
			WHERE (status = 'pending' AND next_at <= ?) OR (status = 'running' AND locked_until < ?)
			ORDER BY next_at, id`+limitClause(limit)+lock+`)
		UPDATE outbox SET status = 'running', locked_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id IN (SELECT id FROM picked)
		RETURNING `+outboxColumns, now, now, now.Add(lease), dbTime(s.now())).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	// RETURNING keeps no order: due first, as selected.
	slices.SortFunc(rows, func(a, b outboxRow) int {
		return cmp.Or(a.NextAt.Compare(b.NextAt), cmp.Compare(a.ID, b.ID))
	})
	return toOutbox(rows), nil
}

// finishOutbox applies an update to a running item and explains a miss. With
// attempt > 0 the item must still run under that claim (its attempts count): a
// claim whose lease ran out and that another worker took over finishes nothing.
func (s *GormStore) finishOutbox(db *gorm.DB, what string, id int64, attempt int, set string, args ...any) error {
	args = append(append([]any{dbTime(s.now())}, args...), id)
	where := `WHERE id = ? AND status = 'running'`
	if attempt > 0 {
		where += ` AND attempts = ?`
		args = append(args, attempt)
	}
	n, err := s.execSQL(db, `UPDATE outbox SET updated_at = ?, locked_until = NULL, `+set+` `+where, args...)
	if err != nil {
		return fmt.Errorf("%s outbox item %d: %w", what, id, err)
	}
	if n == 1 {
		return nil
	}
	var rows []struct {
		Status   string `gorm:"column:status"`
		Attempts int    `gorm:"column:attempts"`
	}
	if err := db.Raw(`SELECT status, attempts FROM outbox WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return fmt.Errorf("%s outbox item %d: %w", what, id, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s outbox item %d: %w", what, id, ErrNotFound)
	}
	if rows[0].Status == string(OutboxRunning) {
		return fmt.Errorf("%s outbox item %d: attempt %d's claim is lost: attempt %d runs it: %w", what, id, attempt,
			rows[0].Attempts, ErrConflict)
	}
	return fmt.Errorf("%s outbox item %d: it is %s, not running: %w", what, id, rows[0].Status, ErrConflict)
}

// CompleteOutbox marks a running item done; ErrConflict when it is not running.
func (s *GormStore) CompleteOutbox(ctx context.Context, id int64, result json.RawMessage) error {
	return s.completeOutbox(s.conn(ctx), id, 0, result)
}

func (s *GormStore) completeOutbox(db *gorm.DB, id int64, attempt int, result json.RawMessage) error {
	res, err := rawJSON("result", result)
	if err != nil {
		return fmt.Errorf("complete outbox item %d: %w", id, err)
	}
	return s.finishOutbox(db, "complete", id, attempt, `status = 'done', result = ?`, res)
}

// RetryOutbox schedules another attempt of a running item; ErrConflict when it is not running.
func (s *GormStore) RetryOutbox(ctx context.Context, id int64, nextAt time.Time, errCode, errText string) error {
	return s.retryOutbox(s.conn(ctx), id, 0, nextAt, errCode, errText)
}

func (s *GormStore) retryOutbox(db *gorm.DB, id int64, attempt int, nextAt time.Time, errCode, errText string) error {
	return s.finishOutbox(db, "retry", id, attempt, `status = 'pending', next_at = ?, error_code = ?, last_error = ?`,
		dbTime(nextAt), cleanText(errCode), cleanText(errText))
}

// FailOutbox ends a running item as failed or dead; ErrConflict when it is not running.
func (s *GormStore) FailOutbox(ctx context.Context, id int64, status OutboxStatus, errCode, errText string) error {
	return s.failOutbox(s.conn(ctx), id, 0, status, errCode, errText)
}

func (s *GormStore) failOutbox(db *gorm.DB, id int64, attempt int, status OutboxStatus, errCode, errText string) error {
	if status != OutboxFailed && status != OutboxDead {
		return fmt.Errorf("fail outbox item %d: status must be %s or %s, got %q", id, OutboxFailed, OutboxDead, status)
	}
	return s.finishOutbox(db, "fail", id, attempt, `status = ?, error_code = ?, last_error = ?`,
		string(status), cleanText(errCode), cleanText(errText))
}

// ---------------------------------------------------------------------------------
// Contacts and flow versions

// LastInbound returns when the contact last wrote to us, or the zero time.
func (s *GormStore) LastInbound(ctx context.Context, channel, contactID string) (time.Time, error) {
	var rows []struct {
		At time.Time `gorm:"column:last_inbound_at"`
	}
	if err := s.read(ctx).Raw(`SELECT last_inbound_at FROM contacts WHERE channel = ? AND contact_id = ?`,
		cleanText(channel), cleanText(contactID)).Scan(&rows).Error; err != nil {
		return time.Time{}, fmt.Errorf("read last inbound time of %s contact: %w", channel, err)
	}
	if len(rows) == 0 {
		return time.Time{}, nil
	}
	return rows[0].At.UTC(), nil
}

type flowVersionRow struct {
	Hash      string    `gorm:"column:hash"`
	Flow      string    `gorm:"column:flow"`
	File      string    `gorm:"column:file"`
	Source    string    `gorm:"column:source"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

// GetFlowVersion returns a stored flow version, or ErrNotFound.
func (s *GormStore) GetFlowVersion(ctx context.Context, hash string) (*FlowVersion, error) {
	var rows []flowVersionRow
	if err := s.read(ctx).Raw(`SELECT hash, flow, file, source, created_at FROM flow_versions WHERE hash = ?`,
		cleanText(hash)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read flow version %s: %w", hash, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read flow version %s: %w", hash, ErrNotFound)
	}
	r := rows[0]
	return &FlowVersion{Hash: r.Hash, Flow: r.Flow, File: r.File, Source: r.Source, CreatedAt: r.CreatedAt.UTC()}, nil
}

// SaveFlowVersion stores a flow version unless its hash is already stored.
func (s *GormStore) SaveFlowVersion(ctx context.Context, v FlowVersion) error {
	return saveFlowVersion(s.conn(ctx), v, dbTime(s.now()))
}

func saveFlowVersion(db *gorm.DB, v FlowVersion, now time.Time) error {
	if v.Hash == "" {
		return errors.New("save flow version: empty hash")
	}
	err := db.Exec(`INSERT INTO flow_versions (hash, flow, file, source, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (hash) DO NOTHING`,
		cleanText(v.Hash), cleanText(v.Flow), cleanText(v.File), cleanText(v.Source), now).Error
	if err != nil {
		return fmt.Errorf("save flow version %s of %s: %w", v.Hash, v.Flow, err)
	}
	return nil
}
