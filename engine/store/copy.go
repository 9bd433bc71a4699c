package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// copyChunk is how many rows a copy reads at a time.
const copyChunk = 1000

// identityTables are the tables whose id the database assigns.
var identityTables = []string{"dialogs", "dialog_keys", "events", "history", "timers", "outbox"}

// Copy moves the whole state of the database named by from (dialogs and their
// keys, history, timers, events, outbox, contacts' windows, flow versions) into
// the fresh database named by to, keeping every id, and checks that every table
// holds as many rows on both sides; either database may be SQLite or PostgreSQL.
// A SQLite source must be stopped (Copy takes its lock); a PostgreSQL source is
// read in one snapshot. The target is migrated, must hold no rows, and is written
// in one transaction: a copy that fails leaves it empty. Id counters continue
// where the source's stood, so ids are never given out twice. progress, when not
// nil, is told each table as it is done.
// Both databases are opened (and so migrated) with opts.
func Copy(ctx context.Context, from, to string, log *slog.Logger, progress func(TableCount), opts ...Option) ([]TableCount, error) {
	for _, dsn := range []string{from, to} {
		release, err := Lock(dsn)
		if errors.Is(err, ErrInUse) {
			return nil, fmt.Errorf("copy: %s is in use by a running fixit; stop it first", Describe(dsn))
		}
		if err != nil {
			return nil, fmt.Errorf("copy: %w", err)
		}
		defer release()
	}
	src, err := Open(ctx, from, log, opts...)
	if err != nil {
		return nil, fmt.Errorf("copy: open the source: %w", err)
	}
	defer src.Close()
	dst, err := Open(ctx, to, log, opts...)
	if err != nil {
		return nil, fmt.Errorf("copy: open the target: %w", err)
	}
	defer dst.Close()

	var counts []TableCount
	read := func(rtx *gorm.DB) error {
		return dst.conn(ctx).Transaction(func(wtx *gorm.DB) error {
			have, err := countRows(wtx)
			if err != nil {
				return err
			}
			for _, c := range have {
				if c.Rows > 0 {
					return fmt.Errorf("the target is not empty (%s has %d rows): copy needs a fresh database", c.Table, c.Rows)
				}
			}
			for _, t := range copiers {
				n, err := t.copy(rtx, wtx)
				if err != nil {
					return fmt.Errorf("copy %s: %w", t.table(), err)
				}
				if progress != nil {
					progress(TableCount{Table: t.table(), Rows: n})
				}
			}
			if counts, err = countRows(rtx); err != nil {
				return err
			}
			copied, err := countRows(wtx)
			if err != nil {
				return err
			}
			if !slices.Equal(counts, copied) {
				return fmt.Errorf("row counts differ after the copy: source %v, target %v", counts, copied)
			}
			return dst.continueIDs(wtx, src, rtx)
		})
	}
	if src.dialect == dialectPostgres {
		err = src.conn(ctx).Transaction(read, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	} else {
		err = src.conn(ctx).Transaction(read)
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", Describe(from), Describe(to), err)
	}
	return counts, nil
}

// continueIDs sets the target's id counters (through wtx) to where the source's
// stand (read through rtx), or past the highest id copied.
func (s *GormStore) continueIDs(wtx *gorm.DB, src *GormStore, rtx *gorm.DB) error {
	for _, t := range identityTables {
		next, err := src.lastID(rtx, t)
		if err != nil {
			return err
		}
		if next == 0 {
			continue
		}
		if s.dialect == dialectPostgres {
			err = wtx.Exec(`SELECT setval(pg_get_serial_sequence(?, 'id'), ?, true)`, t, next).Error
		} else {
			res := wtx.Exec(`UPDATE sqlite_sequence SET seq = ? WHERE name = ?`, next, t)
			if err = res.Error; err == nil && res.RowsAffected == 0 {
				err = wtx.Exec(`INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, t, next).Error
			}
		}
		if err != nil {
			return fmt.Errorf("continue the ids of %s at %d: %w", t, next+1, err)
		}
	}
	return nil
}

// lastID is the last id given out in table (read through tx): the larger of its
// counter (which remembers ids of rows deleted since) and its highest id.
func (s *GormStore) lastID(tx *gorm.DB, table string) (int64, error) {
	var counter, highest int64
	var err error
	if s.dialect == dialectPostgres {
		err = tx.Raw(`SELECT COALESCE(last_value, 0) FROM pg_sequences
			WHERE schemaname || '.' || sequencename = pg_get_serial_sequence(?, 'id')`, table).Scan(&counter).Error
	} else {
		err = tx.Raw(`SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = ?`, table).Scan(&counter).Error
	}
	if err == nil {
		err = tx.Raw(`SELECT COALESCE(MAX(id), 0) FROM ` + table).Scan(&highest).Error
	}
	if err != nil {
		return 0, fmt.Errorf("read the last id of %s: %w", table, err)
	}
	return max(counter, highest), nil
}

// copier copies one table.
type copier interface {
	table() string
	copy(rtx, wtx *gorm.DB) (int64, error)
}

// tableCopy copies a table of rows T in key order, a chunk at a time: columns
// lists them for both the read and the insert; key orders the rows, after gives a
// row's key values to read the next chunk from, and values its columns' values.
type tableCopy[T any] struct {
	name, columns, key string
	after              func(*T) []any
	values             func(*T) []any
}

func (c tableCopy[T]) table() string { return c.name }

func (c tableCopy[T]) copy(rtx, wtx *gorm.DB) (int64, error) {
	keyCols := strings.Split(c.key, ", ")
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(keyCols)), ", ")
	ncols := len(strings.Split(c.columns, ","))
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
	var last []any
	var n int64
	for {
		var rows []T
		q := `SELECT ` + c.columns + ` FROM ` + c.name
		args := []any{}
		if last != nil {
			q += ` WHERE (` + c.key + `) > (` + marks + `)`
			args = append(args, last...)
		}
		q += ` ORDER BY ` + c.key + ` LIMIT ?`
		if err := rtx.Raw(q, append(args, copyChunk)...).Scan(&rows).Error; err != nil {
			return n, fmt.Errorf("read: %w", err)
		}
		for chunk := range slices.Chunk(rows, maxRowsPerInsert) {
			var ins strings.Builder
			ins.WriteString(`INSERT INTO ` + c.name + ` (` + c.columns + `) VALUES `)
			vals := make([]any, 0, len(chunk)*ncols)
			for i := range chunk {
				if i > 0 {
					ins.WriteString(", ")
				}
				ins.WriteString(row)
				vals = append(vals, c.values(&chunk[i])...)
			}
			if err := wtx.Exec(ins.String(), vals...).Error; err != nil {
				return n, fmt.Errorf("write: %w", err)
			}
		}
		n += int64(len(rows))
		if len(rows) < copyChunk {
			return n, nil
		}
		last = c.after(&rows[len(rows)-1])
	}
}

// keyRow is a row of the dialog_keys table as stored.
type keyRow struct {
	ID        int64     `gorm:"column:id"`
	Key       string    `gorm:"column:key"`
	DialogID  int64     `gorm:"column:dialog_id"`
	Active    bool      `gorm:"column:active"`
	CreatedAt time.Time `gorm:"column:created_at"`
	Scope     string    `gorm:"column:scope"`
}

const historyColumns = `id, dialog_id, at, kind, event_id, from_state, to_state, detail`

// historyRow is a row of the history table as stored.
type historyRow struct {
	ID        int64     `gorm:"column:id"`
	DialogID  int64     `gorm:"column:dialog_id"`
	At        time.Time `gorm:"column:at"`
	Kind      string    `gorm:"column:kind"`
	EventID   *int64    `gorm:"column:event_id"`
	FromState string    `gorm:"column:from_state"`
	ToState   string    `gorm:"column:to_state"`
	Detail    string    `gorm:"column:detail"`
}

// contactRow is a row of the contacts table as stored.
type contactRow struct {
	Channel   string    `gorm:"column:channel"`
	ContactID string    `gorm:"column:contact_id"`
	LastAt    time.Time `gorm:"column:last_inbound_at"`
}

// eventCopyRow is a row of the events table with every column.
type eventCopyRow struct {
	ID          int64     `gorm:"column:id"`
	DedupeKey   string    `gorm:"column:dedupe_key"`
	Source      string    `gorm:"column:source"`
	Type        string    `gorm:"column:type"`
	At          time.Time `gorm:"column:at"`
	ReceivedAt  time.Time `gorm:"column:received_at"`
	Keys        string    `gorm:"column:keys"`
	Contact     string    `gorm:"column:contact"`
	Text        string    `gorm:"column:text"`
	Data        string    `gorm:"column:data"`
	Status      string    `gorm:"column:status"`
	DialogID    *int64    `gorm:"column:dialog_id"`
	Error       string    `gorm:"column:error"`
	Attempts    int       `gorm:"column:attempts"`
	AwaitsFiles bool      `gorm:"column:awaits_files"`
}

func byID(id int64) []any { return []any{id} }

// nullTime normalizes a nullable time for writing (see dbTime).
func nullTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := dbTime(*t)
	return &u
}

// copiers copy every table, in the order of tables.
var copiers = []copier{
	tableCopy[flowVersionRow]{name: "flow_versions", columns: "hash, flow, file, source, created_at", key: "hash",
		after:  func(r *flowVersionRow) []any { return []any{r.Hash} },
		values: func(r *flowVersionRow) []any { return []any{r.Hash, r.Flow, r.File, r.Source, dbTime(r.CreatedAt)} }},
	tableCopy[dialogRow]{name: "dialogs", columns: dialogColumns, key: "id",
		after: func(r *dialogRow) []any { return byID(r.ID) },
		values: func(r *dialogRow) []any {
			return []any{r.ID, r.Flow, r.FlowHash, r.State, r.Status, r.Vars, r.Channel, r.ContactID, r.Phone,
				dbTime(r.CreatedAt), dbTime(r.UpdatedAt), r.LastEventID, r.Revision, r.Handoff, nullTime(r.EnteredAt), r.Business}
		}},
	tableCopy[keyRow]{name: "dialog_keys", columns: "id, key, dialog_id, active, created_at, scope", key: "id",
		after:  func(r *keyRow) []any { return byID(r.ID) },
		values: func(r *keyRow) []any { return []any{r.ID, r.Key, r.DialogID, r.Active, dbTime(r.CreatedAt), r.Scope} }},
	tableCopy[eventCopyRow]{name: "events", columns: eventColumns + ", awaits_files", key: "id",
		after: func(r *eventCopyRow) []any { return byID(r.ID) },
		values: func(r *eventCopyRow) []any {
			return []any{r.ID, r.DedupeKey, r.Source, r.Type, dbTime(r.At), dbTime(r.ReceivedAt), r.Keys, r.Contact, r.Text, r.Data,
				r.Status, r.DialogID, r.Error, r.Attempts, r.AwaitsFiles}
		}},
	tableCopy[historyRow]{name: "history", columns: historyColumns, key: "id",
		after: func(r *historyRow) []any { return byID(r.ID) },
		values: func(r *historyRow) []any {
			return []any{r.ID, r.DialogID, dbTime(r.At), r.Kind, r.EventID, r.FromState, r.ToState, r.Detail}
		}},
	tableCopy[timerRow]{name: "timers", columns: timerColumns, key: "id",
		after: func(r *timerRow) []any { return byID(r.ID) },
		values: func(r *timerRow) []any {
			return []any{r.ID, r.DialogID, r.State, r.Name, dbTime(r.DueAt), r.Status, dbTime(r.CreatedAt)}
		}},
	tableCopy[outboxRow]{name: "outbox", columns: outboxColumns, key: "id",
		after: func(r *outboxRow) []any { return byID(r.ID) },
		values: func(r *outboxRow) []any {
			return []any{r.ID, r.DialogID, r.Kind, r.Params, r.Status, r.Attempts, dbTime(r.NextAt), r.LastError, r.ErrorCode,
				r.Result, dbTime(r.CreatedAt), dbTime(r.UpdatedAt), nullTime(r.LockedUntil), r.Requeues, r.MessageID,
				r.Delivery, r.DelivCode, r.DelivError, nullTime(r.DeliveryAt)}
		}},
	tableCopy[deliveryRow]{name: "event_deliveries", columns: deliveryColumns, key: "event_id, dialog_id",
		after: func(r *deliveryRow) []any { return []any{r.EventID, r.DialogID} },
		values: func(r *deliveryRow) []any {
			return []any{r.EventID, r.DialogID, r.Flow, r.Scope, r.Status, r.Started, r.Error, dbTime(r.At)}
		}},
	tableCopy[FileRow]{name: "files", columns: fileColumns, key: "id",
		after: func(r *FileRow) []any { return []any{r.ID} },
		values: func(r *FileRow) []any {
			return []any{r.ID, r.DialogID, r.EventID, r.Name, r.MIME, r.Size, r.SHA256, r.Path, dbTime(r.CreatedAt)}
		}},
	tableCopy[contactRow]{name: "contacts", columns: "channel, contact_id, last_inbound_at", key: "channel, contact_id",
		after:  func(r *contactRow) []any { return []any{r.Channel, r.ContactID} },
		values: func(r *contactRow) []any { return []any{r.Channel, r.ContactID, dbTime(r.LastAt)} }},
}
