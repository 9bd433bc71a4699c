package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// deferredWrites are the writes of a SQLite transaction that nothing in it reads
// back before it ends: dialogs' updates, history lines, new timers and outbox
// items, cancelled timers, events' outcomes (MarkEvent) and completed outbox items. They are kept
// until the transaction's steps are done and then made together: with one
// statement per kind (for dialogs, per list of changed columns) that takes all
// the rows as one JSON array, instead of one statement per call. The SQLite
// driver compiles every statement it runs afresh, and for these small writes
// compiling costs as much as running them; a batch of steps (Store.Steps) shares
// one compilation per kind. A kind with too few rows to pay for the larger
// statement gets the plain one per row (kept.manyFrom).
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
	history, timers, cancels, outbox, marks, done kept
	dialogs                                       []*kept // one per list of changed columns
	dialogCols                                    [][]string

	timerIDs, timerDialogs, outboxIDs, markIDs, doneIDs, dialogIDs, dialogRevs []int64
	marked                                                                     []EventStatus
	// next is the next id of the tables whose ids are handed out here.
	next map[string]int64
	// timersMade counts the timer ids handed out in this transaction: they are
	// next["timers"]-timersMade and on, one after another.
	timersMade int64
}

// kept is one kind of kept write: its rows, each the values of one row in the order
// the statements number them, and its two statements.
type kept struct {
	one  string // for one row, its values bound as ?1, ?2, ...
	many string // for many rows, all of them as one JSON array bound as ?
	// manyFrom is the number of rows from which many is cheaper than one per row:
	// it is compiled once, but compiling it costs two to three times as much.
	manyFrom int
	rows     [][]any
}

// newDeferredWrites returns an empty set of kept writes with their statements. In
// the updates of many rows, the unary + keeps SQLite from looking the rows up by
// their status index and scanning the JSON rows for each (quadratic in a backlog
// of pending events); each JSON row finds its row by id instead.
func newDeferredWrites() *deferredWrites {
	return &deferredWrites{
		history: kept{manyFrom: 2,
			one: `INSERT INTO history (dialog_id, at, kind, event_id, from_state, to_state, detail)
				VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`,
			many: `INSERT INTO history (dialog_id, at, kind, event_id, from_state, to_state, detail)
				SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 FROM jsonb_each(?)`},
		timers: kept{manyFrom: 2,
			one: `INSERT INTO timers (id, dialog_id, state, name, due_at, status, created_at)
				VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)`,
			many: `INSERT INTO timers (id, dialog_id, state, name, due_at, status, created_at)
				SELECT value->>0, value->>1, value->>2, value->>3, value->>4, 'pending', value->>5 FROM jsonb_each(?)`},
		// A kept cancel is the dialog, the state ("" = every state), the id from
		// which the timers were scheduled after it (cancelBound), which it must
		// not cancel, and the status it cancels (pending). The status is a value
		// of the row rather than of the statement, so that SQLite looks each row's
		// timers up by timers_dialog (dialog_id, status) instead of going through
		// every pending timer by timers_status_due for each row.
		cancels: kept{manyFrom: 2,
			one: `UPDATE timers SET status = 'cancelled'
				WHERE dialog_id = ?1 AND status = ?4 AND (?2 = '' OR state = ?2) AND +id < ?3`,
			many: `UPDATE timers SET status = 'cancelled'
				FROM jsonb_each(?) AS j WHERE timers.dialog_id = j.value->>0 AND timers.status = j.value->>3
				AND (j.value->>1 = '' OR timers.state = j.value->>1) AND +timers.id < j.value->>2`},
		outbox: kept{manyFrom: 2,
			one: `INSERT INTO outbox (id, dialog_id, kind, params, status, attempts, next_at, created_at, updated_at)
				VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?6)`,
			many: `INSERT INTO outbox (id, dialog_id, kind, params, status, attempts, next_at, created_at, updated_at)
				SELECT value->>0, value->>1, value->>2, value->>3, 'pending', 0, value->>4, value->>5, value->>5
				FROM jsonb_each(?)`},
		marks: kept{manyFrom: 4,
			one: `UPDATE events SET status = ?2, dialog_id = ?3, error = ?4, attempts = attempts + 1
				WHERE id = ?1 AND status = 'pending'`,
			many: `UPDATE events SET status = j.value->>1, dialog_id = j.value->>2, error = j.value->>3,
					attempts = attempts + 1
				FROM jsonb_each(?) AS j WHERE events.id = j.value->>0 AND +events.status = 'pending'`},
		// A kept completion of a send also records the message it sent (its id,
		// delivery, code, error and time); those five are null for another item,
		// whose columns stay as they are.
		done: kept{manyFrom: 3,
			one: `UPDATE outbox SET updated_at = ?2, locked_until = NULL, status = 'done', result = ?3,
					message_id = IFNULL(?5, message_id), delivery = IFNULL(?6, delivery),
					delivery_code = IFNULL(?7, delivery_code), delivery_error = IFNULL(?8, delivery_error),
					delivery_at = IFNULL(?9, delivery_at)
				WHERE id = ?1 AND status = 'running' AND (?4 = 0 OR attempts = ?4)`,
			many: `UPDATE outbox SET updated_at = j.value->>1, locked_until = NULL, status = 'done', result = j.value->>2,
					message_id = IFNULL(j.value->>4, message_id), delivery = IFNULL(j.value->>5, delivery),
					delivery_code = IFNULL(j.value->>6, delivery_code), delivery_error = IFNULL(j.value->>7, delivery_error),
					delivery_at = IFNULL(j.value->>8, delivery_at)
				FROM jsonb_each(?) AS j WHERE outbox.id = j.value->>0 AND +outbox.status = 'running'
				AND (j.value->>3 = 0 OR outbox.attempts = j.value->>3)`},
	}
}

// dialogUpdate is the kind of kept write that updates the columns cols of dialogs
// (from storedColumns.changedSince, never outside input). A row is the dialog's
// id, the revision read, the values of cols, the update time and the last event.
func dialogUpdate(cols []string) kept {
	var one, many strings.Builder
	one.WriteString("UPDATE dialogs SET ")
	many.WriteString("UPDATE dialogs SET ")
	for i, c := range cols {
		fmt.Fprintf(&one, "%s = ?%d, ", c, i+3)
		fmt.Fprintf(&many, "%s = j.value->>%d, ", c, i+2)
	}
	n := len(cols)
	fmt.Fprintf(&one, `updated_at = ?%d, last_event_id = ?%d, revision = revision + 1 WHERE id = ?1 AND revision = ?2`,
		n+3, n+4)
	fmt.Fprintf(&many, `updated_at = j.value->>%d, last_event_id = j.value->>%d, revision = revision + 1
		FROM jsonb_each(?) AS j WHERE dialogs.id = j.value->>0 AND +dialogs.revision = j.value->>1`, n+2, n+3)
	return kept{one: one.String(), many: many.String(), manyFrom: 2}
}

// add keeps one row.
func (k *kept) add(vals ...any) { k.rows = append(k.rows, vals) }

// flush makes the kept rows and returns how many rows its statements changed.
func (k *kept) flush(tx *gorm.DB) (int64, error) {
	rows := k.rows
	k.rows = nil
	if len(rows) == 0 {
		return 0, nil
	}
	if len(rows) < k.manyFrom {
		var changed int64
		for _, r := range rows {
			n, err := execCount(tx, k.one, r)
			if err != nil {
				return changed, err
			}
			changed += n
		}
		return changed, nil
	}
	var list []byte
	for _, r := range rows {
		list = appendRow(list, r...)
	}
	return execCount(tx, k.many, []any{"[" + string(list) + "]"})
}

// execCount runs a write and returns how many rows it changed.
func execCount(tx *gorm.DB, query string, args []any) (int64, error) {
	res, err := direct(tx, query, args)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

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
	w.history.add(dialogID, at, kind, eventSeq, from, to, detail)
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
	w.timers.add(id, dialogID, state, name, due, now)
	w.timerIDs = append(w.timerIDs, id)
	w.timerDialogs = append(w.timerDialogs, dialogID)
	w.timersMade++
	return id, nil
}

// addCancel keeps the cancel of the dialog's pending timers of state ("" = of
// every state). It is made as if at once: on the timers that exist now, those
// scheduled earlier in the transaction among them, and never on one scheduled
// after it. So it remembers how many timers the transaction had scheduled, and
// flushCancels turns that into the id they start from.
func (w *deferredWrites) addCancel(dialogID int64, state string) {
	w.cancels.add(dialogID, state, w.timersMade, string(TimerPending))
}

// cancelBound is the id from which the timers of this transaction were scheduled
// after a cancel made when made of them had been: the cancel changes only timers
// below it. With none scheduled after it, the bound is past every id.
func (w *deferredWrites) cancelBound(made int64) int64 {
	if made >= w.timersMade {
		return math.MaxInt64
	}
	return w.next["timers"] - w.timersMade + made
}

// addOutbox keeps one new outbox item and returns its id.
func (w *deferredWrites) addOutbox(tx *gorm.DB, dialogID *int64, kind, params string, nextAt, now time.Time) (int64, error) {
	id, err := w.newID(tx, "outbox")
	if err != nil {
		return 0, err
	}
	w.outbox.add(id, dialogID, kind, params, nextAt, now)
	w.outboxIDs = append(w.outboxIDs, id)
	return id, nil
}

// addMark keeps one event's outcome.
func (w *deferredWrites) addMark(seq int64, status EventStatus, dialogID *int64, errText string) {
	w.marks.add(seq, string(status), dialogID, errText)
	w.markIDs = append(w.markIDs, seq)
	w.marked = append(w.marked, status)
}

// addDone keeps one outbox item's completion under the claim of attempt (0: any),
// and with sent, when not nil, the message its send made: its id, delivery status,
// code and error (both empty for a message just sent) and time.
func (w *deferredWrites) addDone(id int64, attempt int, at time.Time, result string, sent *sentMessage) {
	if sent == nil {
		w.done.add(id, at, result, int64(attempt), nil, nil, nil, nil, nil)
	} else {
		w.done.add(id, at, result, int64(attempt), sent.id, sent.status, sent.code, sent.error, sent.at)
	}
	w.doneIDs = append(w.doneIDs, id)
}

// sentMessage is the message a send made, as its completion records it.
type sentMessage struct {
	id, status, code, error string
	at                      time.Time
}

// addDialogUpdate keeps one dialog's update at revision: the changed columns and
// their values (string, time.Time or nil), its update time and last event.
func (w *deferredWrites) addDialogUpdate(id, revision int64, cols []string, vals []any, now time.Time, lastEvent int64) {
	i := slices.IndexFunc(w.dialogCols, func(c []string) bool { return slices.Equal(c, cols) })
	if i < 0 {
		k := dialogUpdate(cols)
		w.dialogs, w.dialogCols = append(w.dialogs, &k), append(w.dialogCols, cols)
		i = len(w.dialogs) - 1
	}
	row := append([]any{id, revision}, vals...)
	w.dialogs[i].add(append(row, now, lastEvent)...)
	w.dialogIDs = append(w.dialogIDs, id)
	w.dialogRevs = append(w.dialogRevs, revision)
}

// reset forgets every kept write and the next ids (their transaction or savepoint
// was rolled back).
func (w *deferredWrites) reset() {
	*w = *newDeferredWrites()
}

// flush makes every kept write through tx.
func (w *deferredWrites) flush(tx *gorm.DB) error {
	return errors.Join(w.flushDialogs(tx), w.flushCancels(tx), w.flushOutbox(tx), w.flushHistory(tx), w.flushMarks(tx),
		w.flushDone(tx))
}

// flushDialogs makes the kept dialog updates; it fails, as UpdateDialog does, when
// a dialog's revision moved on.
func (w *deferredWrites) flushDialogs(tx *gorm.DB) error {
	ids, revs, kinds := w.dialogIDs, w.dialogRevs, w.dialogs
	w.dialogIDs, w.dialogRevs, w.dialogs, w.dialogCols = nil, nil, nil, nil
	if len(ids) == 0 {
		return nil
	}
	var changed int64
	for _, k := range kinds {
		n, err := k.flush(tx)
		if err != nil {
			return fmt.Errorf("update %d dialogs: %w", len(ids), err)
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

// flushTimers inserts the kept timers.
func (w *deferredWrites) flushTimers(tx *gorm.DB) error {
	n := len(w.timerIDs)
	w.timerIDs, w.timerDialogs = w.timerIDs[:0], w.timerDialogs[:0]
	if err := insertAll(tx, &w.timers, n); err != nil {
		return fmt.Errorf("schedule %d timers: %w", n, err)
	}
	return nil
}

// flushCancels makes the kept cancels of timers, after inserting the kept timers
// (which some of them cancel).
func (w *deferredWrites) flushCancels(tx *gorm.DB) error {
	if err := w.flushTimers(tx); err != nil {
		return err
	}
	rows := w.cancels.rows
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		r[2] = w.cancelBound(r[2].(int64))
	}
	if _, err := w.cancels.flush(tx); err != nil {
		if len(rows) == 1 {
			return fmt.Errorf("cancel timers of dialog %d: %w", rows[0][0], err)
		}
		return fmt.Errorf("make %d cancels of timers: %w", len(rows), err)
	}
	return nil
}

// flushOutbox inserts the kept outbox items.
func (w *deferredWrites) flushOutbox(tx *gorm.DB) error {
	n := len(w.outboxIDs)
	w.outboxIDs = w.outboxIDs[:0]
	if err := insertAll(tx, &w.outbox, n); err != nil {
		return fmt.Errorf("enqueue %d outbox items: %w", n, err)
	}
	return nil
}

// flushHistory inserts the kept history lines.
func (w *deferredWrites) flushHistory(tx *gorm.DB) error {
	n := len(w.history.rows)
	if err := insertAll(tx, &w.history, n); err != nil {
		return fmt.Errorf("append %d history lines: %w", n, err)
	}
	return nil
}

// insertAll makes the n kept inserts of k and checks that all n rows went in.
func insertAll(tx *gorm.DB, k *kept, n int) error {
	got, err := k.flush(tx)
	if err != nil {
		return err
	}
	if int(got) != n {
		return fmt.Errorf("%d of %d rows inserted", got, n)
	}
	return nil
}

// flushMarks settles the kept events; it fails, as MarkEvent does, when one of
// them is missing or no longer pending.
func (w *deferredWrites) flushMarks(tx *gorm.DB) error {
	ids, statuses := w.markIDs, w.marked
	w.markIDs, w.marked = nil, nil
	if len(ids) == 0 {
		return nil
	}
	n, err := w.marks.flush(tx)
	if err != nil {
		if len(ids) == 1 {
			return fmt.Errorf("mark event %d %s: %w", ids[0], statuses[0], err)
		}
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
// one of them is missing or no longer running under the claim it was completed by.
func (w *deferredWrites) flushDone(tx *gorm.DB) error {
	ids := w.doneIDs
	w.doneIDs = nil
	if len(ids) == 0 {
		return nil
	}
	n, err := w.done.flush(tx)
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
