package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// deferredWrites are the writes of a SQLite transaction that nothing in it reads
// back before it ends: dialogs' updates, history lines, new timers and outbox
// items, events' outcomes (MarkEvent) and completed outbox items. They are kept
// until the transaction's steps are done and then made with one statement per
// kind for all of them (for dialogs, one per list of changed columns), the rows
// passed as one JSON array, instead of one statement per call. The SQLite driver
// compiles every statement it runs afresh, and for these small writes compiling
// costs as much as running them; a batch of steps (Store.Steps) shares one
// compilation per kind.
//
// A new timer or outbox item gets its id at once all the same: the transaction
// holds the database's write lock, so the next ids of the two tables are known
// (read once per transaction) and the rows are inserted with them.
//
// A write that depends on a kept one makes it first (the callers of the flush
// methods), so every step still sees the ones before it. A kept write that fails
// fails its step when the step ends (Store.Step), or the batch, which Store.Steps
// then runs again step by step to find whose it was.
type deferredWrites struct {
	history      []byte // JSON rows, without the enclosing brackets
	nHist        int
	timers       []byte
	timerIDs     []int64
	timerDialogs []int64
	outbox       []byte
	outboxIDs    []int64
	marks        []byte
	markIDs      []int64
	marked       []EventStatus
	done         []byte
	doneIDs      []int64
	dialogs      []dialogUpdates // one per list of changed columns
	dialogIDs    []int64
	dialogRevs   []int64
	// next is the next id of the tables whose ids are handed out here.
	next map[string]int64
}

// The statements of the kept writes. Each takes its rows as one JSON array of
// arrays. In the updates, the unary + keeps SQLite from looking the rows up by
// their status index and scanning the JSON rows for each (a backlog of pending
// events made that quadratic); each JSON row finds its row by id instead.
const (
	insertTimersSQL = `INSERT INTO timers (id, dialog_id, state, name, due_at, status, created_at)
		SELECT value->>0, value->>1, value->>2, value->>3, value->>4, 'pending', value->>5 FROM jsonb_each(?)`
	insertOutboxSQL = `INSERT INTO outbox (id, dialog_id, kind, params, status, attempts, next_at, created_at, updated_at)
		SELECT value->>0, value->>1, value->>2, value->>3, 'pending', 0, value->>4, value->>5, value->>5 FROM jsonb_each(?)`
	insertHistorySQL = `INSERT INTO history (dialog_id, at, kind, event_id, from_state, to_state, detail)
		SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 FROM jsonb_each(?)`
	markEventsSQL = `UPDATE events SET status = j.value->>1, dialog_id = j.value->>2, error = j.value->>3,
			attempts = attempts + 1
		FROM jsonb_each(?) AS j WHERE events.id = j.value->>0 AND +events.status = 'pending'`
	completeOutboxSQL = `UPDATE outbox SET updated_at = j.value->>1, locked_until = NULL, status = 'done',
			result = j.value->>2
		FROM jsonb_each(?) AS j WHERE outbox.id = j.value->>0 AND +outbox.status = 'running'`
)

// appendJSONString appends s as a JSON string. s is valid UTF-8 without NUL (every
// stored text goes through cleanText).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendRow appends one JSON row of vals to a list of rows. A value is an int64, an
// optional id (*int64), a string, a time.Time or nil.
func appendRow(list []byte, vals ...any) []byte {
	if len(list) > 0 {
		list = append(list, ',')
	}
	b := append(list, '[')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		switch v := v.(type) {
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case *int64:
			if v == nil {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendInt(b, *v, 10)
			}
		case string:
			b = appendJSONString(b, v)
		case time.Time:
			b = appendJSONString(b, v.Format(sqliteTimeLayout))
		case nil:
			b = append(b, "null"...)
		default:
			panic(fmt.Sprintf("store: no JSON form for a %T in a kept row", v))
		}
	}
	return append(b, ']')
}

// addHistory keeps one history line.
func (w *deferredWrites) addHistory(dialogID int64, at time.Time, kind string, eventSeq *int64, from, to, detail string) {
	w.history = appendRow(w.history, dialogID, at, kind, eventSeq, from, to, detail)
	w.nHist++
}

// newID hands out the next id of table (timers or outbox).
func (w *deferredWrites) newID(tx *gorm.DB, table string) (int64, error) {
	id, ok := w.next[table]
	if !ok {
		// AUTOINCREMENT gives the next row the greater of the highest id ever used
		// and the highest id present, plus one.
		var last int64
		if err := tx.Raw(`SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),
			COALESCE((SELECT MAX(id) FROM `+table+`), 0))`, table).Scan(&last).Error; err != nil {
			return 0, fmt.Errorf("read the next id of %s: %w", table, err)
		}
		if w.next == nil {
			w.next = map[string]int64{}
		}
		id = last + 1
	}
	w.next[table] = id + 1
	return id, nil
}

// addTimer keeps one new timer and returns its id.
func (w *deferredWrites) addTimer(tx *gorm.DB, dialogID int64, state, name string, due, now time.Time) (int64, error) {
	id, err := w.newID(tx, "timers")
	if err != nil {
		return 0, err
	}
	w.timers = appendRow(w.timers, id, dialogID, state, name, due, now)
	w.timerIDs = append(w.timerIDs, id)
	w.timerDialogs = append(w.timerDialogs, dialogID)
	return id, nil
}

// addOutbox keeps one new outbox item and returns its id.
func (w *deferredWrites) addOutbox(tx *gorm.DB, dialogID *int64, kind, params string, nextAt, now time.Time) (int64, error) {
	id, err := w.newID(tx, "outbox")
	if err != nil {
		return 0, err
	}
	w.outbox = appendRow(w.outbox, id, dialogID, kind, params, nextAt, now)
	w.outboxIDs = append(w.outboxIDs, id)
	return id, nil
}

// addMark keeps one event's outcome.
func (w *deferredWrites) addMark(seq int64, status EventStatus, dialogID *int64, errText string) {
	w.marks = appendRow(w.marks, seq, string(status), dialogID, errText)
	w.markIDs = append(w.markIDs, seq)
	w.marked = append(w.marked, status)
}

// addDone keeps one outbox item's completion.
func (w *deferredWrites) addDone(id int64, at time.Time, result string) {
	w.done = appendRow(w.done, id, at, result)
	w.doneIDs = append(w.doneIDs, id)
}

// dialogUpdates are the kept updates of dialogs that change the same columns.
type dialogUpdates struct {
	cols []string
	rows []byte
	n    int
}

// addDialogUpdate keeps one dialog's update at revision: the changed columns and
// their values (string, time.Time or nil), its update time and last event.
func (w *deferredWrites) addDialogUpdate(id, revision int64, cols []string, vals []any, now time.Time, lastEvent int64) {
	var u *dialogUpdates
	for i := range w.dialogs {
		if slices.Equal(w.dialogs[i].cols, cols) {
			u = &w.dialogs[i]
			break
		}
	}
	if u == nil {
		w.dialogs = append(w.dialogs, dialogUpdates{cols: cols})
		u = &w.dialogs[len(w.dialogs)-1]
	}
	row := append([]any{id, revision}, vals...)
	u.rows = appendRow(u.rows, append(row, now, lastEvent)...)
	u.n++
	w.dialogIDs = append(w.dialogIDs, id)
	w.dialogRevs = append(w.dialogRevs, revision)
}

// dialogUpdateSQL is the statement of kept dialog updates that change cols (from
// storedColumns.changedSince, never outside input).
func dialogUpdateSQL(cols []string) string {
	var q strings.Builder
	q.WriteString("UPDATE dialogs SET ")
	for i, c := range cols {
		fmt.Fprintf(&q, "%s = j.value->>%d, ", c, i+2)
	}
	fmt.Fprintf(&q, `updated_at = j.value->>%d, last_event_id = j.value->>%d, revision = revision + 1
		FROM jsonb_each(?) AS j WHERE dialogs.id = j.value->>0 AND +dialogs.revision = j.value->>1`, len(cols)+2, len(cols)+3)
	return q.String()
}

// flushDialogs makes the kept dialog updates; it fails, as UpdateDialog does, when
// a dialog's revision moved on.
func (w *deferredWrites) flushDialogs(tx *gorm.DB) error {
	if len(w.dialogIDs) == 0 {
		return nil
	}
	ids, revs, groups := w.dialogIDs, w.dialogRevs, w.dialogs
	w.dialogIDs, w.dialogRevs, w.dialogs = nil, nil, nil
	var changed int64
	for _, u := range groups {
		res, err := direct(tx, dialogUpdateSQL(u.cols), []any{jsonRows(u.rows)})
		if err != nil {
			return fmt.Errorf("update %d dialogs: %w", u.n, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update %d dialogs: %w", u.n, err)
		}
		changed += n
	}
	switch {
	case int(changed) == len(ids):
		return nil
	case len(ids) == 1:
		return fmt.Errorf("update dialog %d at revision %d: %w", ids[0], revs[0], ErrConflict)
	default:
		return fmt.Errorf("update %d dialogs: %d of them at another revision: %w", len(ids), len(ids)-int(changed), ErrConflict)
	}
}

// reset forgets every kept write and the next ids (their transaction or savepoint
// was rolled back).
func (w *deferredWrites) reset() {
	*w = deferredWrites{}
}

// flush makes every kept write through tx.
func (w *deferredWrites) flush(tx *gorm.DB) error {
	return errors.Join(w.flushDialogs(tx), w.flushTimers(tx), w.flushOutbox(tx), w.flushHistory(tx), w.flushMarks(tx),
		w.flushDone(tx))
}

// flushTimers inserts the kept timers.
func (w *deferredWrites) flushTimers(tx *gorm.DB) error {
	n := len(w.timerIDs)
	if n == 0 {
		return nil
	}
	err := insertAll(tx, insertTimersSQL, w.timers, n)
	w.timers, w.timerIDs, w.timerDialogs = w.timers[:0], w.timerIDs[:0], w.timerDialogs[:0]
	if err != nil {
		return fmt.Errorf("schedule %d timers: %w", n, err)
	}
	return nil
}

// flushOutbox inserts the kept outbox items.
func (w *deferredWrites) flushOutbox(tx *gorm.DB) error {
	n := len(w.outboxIDs)
	if n == 0 {
		return nil
	}
	err := insertAll(tx, insertOutboxSQL, w.outbox, n)
	w.outbox, w.outboxIDs = w.outbox[:0], w.outboxIDs[:0]
	if err != nil {
		return fmt.Errorf("enqueue %d outbox items: %w", n, err)
	}
	return nil
}

// insertAll runs an INSERT of n JSON rows and checks that it inserted them all.
func insertAll(tx *gorm.DB, query string, rows []byte, n int) error {
	res, err := direct(tx, query, []any{jsonRows(rows)})
	if err != nil {
		return err
	}
	got, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if int(got) != n {
		return fmt.Errorf("%d of %d rows inserted", got, n)
	}
	return nil
}

// jsonRows encloses a list of rows in brackets.
func jsonRows(list []byte) string { return "[" + string(list) + "]" }

func (w *deferredWrites) flushHistory(tx *gorm.DB) error {
	if w.nHist == 0 {
		return nil
	}
	n := w.nHist
	err := insertAll(tx, insertHistorySQL, w.history, n)
	w.history, w.nHist = w.history[:0], 0
	if err != nil {
		return fmt.Errorf("append %d history lines: %w", n, err)
	}
	return nil
}

// flushMarks settles the kept events; it fails, as MarkEvent does, when one of
// them is missing or no longer pending.
func (w *deferredWrites) flushMarks(tx *gorm.DB) error {
	if len(w.markIDs) == 0 {
		return nil
	}
	ids, statuses := w.markIDs, w.marked
	res, err := direct(tx, markEventsSQL, []any{jsonRows(w.marks)})
	w.marks, w.markIDs, w.marked = w.marks[:0], w.markIDs[:0], w.marked[:0]
	if err != nil {
		if len(ids) == 1 {
			return fmt.Errorf("mark event %d %s: %w", ids[0], statuses[0], err)
		}
		return fmt.Errorf("mark %d events: %w", len(ids), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("mark %d events: %w", len(ids), err)
	}
	if int(n) == len(ids) {
		return nil
	}
	// Some were missing or settled already: say which are missing, else that some
	// were settled (Steps runs its steps again one by one, and each learns its own).
	var found []int64
	if err := tx.Raw(`SELECT id FROM events WHERE id IN ?`, ids).Scan(&found).Error; err != nil {
		return fmt.Errorf("mark %d events: %w", len(ids), err)
	}
	for i, id := range ids {
		if !slices.Contains(found, id) {
			return fmt.Errorf("mark event %d %s: %w", id, statuses[i], ErrNotFound)
		}
	}
	if len(ids) == 1 {
		return fmt.Errorf("mark event %d %s: %w", ids[0], statuses[0], ErrSettled)
	}
	return fmt.Errorf("mark %d events: %d of them no longer pending: %w", len(ids), len(ids)-int(n), ErrSettled)
}

// flushDone completes the kept outbox items; it fails, as CompleteOutbox does, when
// one of them is missing or no longer running.
func (w *deferredWrites) flushDone(tx *gorm.DB) error {
	if len(w.doneIDs) == 0 {
		return nil
	}
	ids := w.doneIDs
	res, err := direct(tx, completeOutboxSQL, []any{jsonRows(w.done)})
	w.done, w.doneIDs = w.done[:0], w.doneIDs[:0]
	if err != nil {
		return fmt.Errorf("complete %d outbox items: %w", len(ids), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("complete %d outbox items: %w", len(ids), err)
	}
	if int(n) == len(ids) {
		return nil
	}
	var rows []struct {
		ID     int64  `gorm:"column:id"`
		Status string `gorm:"column:status"`
	}
	if err := tx.Raw(`SELECT id, status FROM outbox WHERE id IN ?`, ids).Scan(&rows).Error; err != nil {
		return fmt.Errorf("complete %d outbox items: %w", len(ids), err)
	}
	status := make(map[int64]string, len(rows))
	for _, r := range rows {
		status[r.ID] = r.Status
	}
	for _, id := range ids {
		if _, ok := status[id]; !ok {
			return fmt.Errorf("complete outbox item %d: %w", id, ErrNotFound)
		}
	}
	if len(ids) == 1 {
		return fmt.Errorf("complete outbox item %d: it is %s, not running: %w", ids[0], status[ids[0]], ErrConflict)
	}
	return fmt.Errorf("complete %d outbox items: %d of them no longer running: %w", len(ids), len(ids)-int(n), ErrConflict)
}
