package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"gorm.io/gorm"

	"github.com/fixit-exchange/fixit/engine/event"
)

// stepTx is the StepTx of one GORM transaction.
type stepTx struct {
	s  *GormStore
	tx *gorm.DB
	// w keeps the writes made at the end of the transaction's steps (SQLite; nil
	// on PostgreSQL, where every write is made at once).
	w *deferredWrites
}

// newStepTx is the StepTx of tx.
func (s *GormStore) newStepTx(tx *gorm.DB) *stepTx {
	t := &stepTx{s: s, tx: tx}
	if s.dialect == dialectSQLite {
		t.w = newDeferredWrites()
	}
	return t
}

// flush makes the writes kept until the end of the step (or of the batch of steps).
func (t *stepTx) flush() error {
	if t.w == nil {
		return nil
	}
	return t.w.flush(t.tx)
}

var _ StepTx = (*stepTx)(nil)

// exec runs a write of the step and returns how many rows it changed; see
// GormStore.execSQL.
func (t *stepTx) exec(query string, args ...any) (int64, error) {
	return t.s.execSQL(t.tx, query, args...)
}

// insert runs an INSERT of one row and returns its id: the last insert rowid on
// SQLite (where RETURNING costs a temporary table per statement), RETURNING on
// PostgreSQL.
func (t *stepTx) insert(query string, args ...any) (int64, error) {
	if t.s.dialect == dialectSQLite {
		res, err := direct(t.tx, query, args)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	var id int64
	err := t.tx.Raw(query+` RETURNING id`, args...).Scan(&id).Error
	return id, err
}

// LockDialog loads a dialog and, on PostgreSQL, locks its row until the step ends.
// SQLite needs no row lock: the step's IMMEDIATE transaction holds the database's
// write lock already.
func (t *stepTx) LockDialog(id int64) (*Dialog, error) {
	if t.w != nil && slices.Contains(t.w.dialogIDs, id) {
		if err := t.w.flushDialogs(t.tx); err != nil {
			return nil, err
		}
	}
	suffix := ""
	if t.s.dialect == dialectPostgres {
		suffix = " FOR UPDATE"
	}
	return getDialog(t.tx, id, suffix)
}

// ClaimEvent claims a pending event for this step; see StepTx.ClaimEvent.
func (t *stepTx) ClaimEvent(seq int64) (bool, error) {
	suffix := ""
	if t.s.dialect == dialectPostgres {
		suffix = " FOR UPDATE SKIP LOCKED"
	}
	if t.w != nil {
		if err := t.w.flushMarks(t.tx); err != nil {
			return false, err
		}
	}
	var ids []int64
	if err := t.tx.Raw(`SELECT id FROM events WHERE id = ? AND status = 'pending'`+suffix, seq).Scan(&ids).Error; err != nil {
		return false, fmt.Errorf("claim event %d: %w", seq, err)
	}
	return len(ids) == 1, nil
}

// CreateDialog inserts d and sets its ID, timestamps and Revision.
func (t *stepTx) CreateDialog(d *Dialog) error {
	if d.Flow == "" || d.State == "" {
		return errors.New("create dialog: flow and state are required")
	}
	if d.Status == "" {
		d.Status = dialog.Active
	}
	if !d.Status.Valid() {
		return fmt.Errorf("create dialog of flow %s: unknown status %q", d.Flow, d.Status)
	}
	vars, err := encodeVars(d.Vars)
	if err != nil {
		return fmt.Errorf("create dialog of flow %s: %w", d.Flow, err)
	}
	handoff, err := encodeHandoff(d.HandoffUntil)
	if err != nil {
		return fmt.Errorf("create dialog of flow %s: %w", d.Flow, err)
	}
	now := dbTime(t.s.now())
	cols := &storedColumns{flowHash: cleanText(d.FlowHash), state: cleanText(d.State), status: string(d.Status), vars: vars,
		channel: cleanText(d.Channel), contactID: cleanText(d.ContactID), phone: cleanText(d.Phone), handoff: handoff,
		enteredAt: optTime(d.EnteredAt)}
	id, err := t.insert(`INSERT INTO dialogs (flow, flow_hash, state, status, vars, channel, contact_id, phone,
			created_at, updated_at, last_event_id, revision, handoff_until, entered_at, business_number)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
		cleanText(d.Flow), cols.flowHash, cols.state, cols.status, cols.vars, cols.channel, cols.contactID, cols.phone,
		now, now, d.LastEventID, cols.handoff, cols.enteredAt, cleanText(d.BusinessNumber),
	)
	if err != nil {
		return fmt.Errorf("create dialog of flow %s: %w", d.Flow, err)
	}
	d.ID, d.CreatedAt, d.UpdatedAt, d.Revision, d.stored = id, now, now, 1, cols
	return nil
}

// encodeHandoff encodes the event types that end a handoff as a JSON list.
func encodeHandoff(types []string) (string, error) {
	if len(types) == 0 {
		return "[]", nil
	}
	clean := make([]string, len(types))
	for i, t := range types {
		clean[i] = cleanText(t)
	}
	return encodeJSON(clean)
}

// optTime is nil for the zero time, so the column stays NULL.
func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return dbTime(t)
}

// encodeVars encodes a dialog's variables; nil is an empty object.
func encodeVars(vars map[string]any) (string, error) {
	if vars == nil {
		return "{}", nil
	}
	s, err := encodeJSON(vars)
	if err != nil {
		return "", fmt.Errorf("encode vars: %w", err)
	}
	return s, nil
}

// UpdateDialog writes d if its revision is current; see StepTx.UpdateDialog. On
// SQLite the update is kept until the step ends (see deferredWrites), and a
// revision that moved on fails the step there.
func (t *stepTx) UpdateDialog(d *Dialog) error {
	if !d.Status.Valid() {
		return fmt.Errorf("update dialog %d: unknown status %q", d.ID, d.Status)
	}
	vars, err := encodeVars(d.Vars)
	if err != nil {
		return fmt.Errorf("update dialog %d: %w", d.ID, err)
	}
	handoff, err := encodeHandoff(d.HandoffUntil)
	if err != nil {
		return fmt.Errorf("update dialog %d: %w", d.ID, err)
	}
	now := dbTime(t.s.now())
	cols := &storedColumns{flowHash: cleanText(d.FlowHash), state: cleanText(d.State), status: string(d.Status), vars: vars,
		channel: cleanText(d.Channel), contactID: cleanText(d.ContactID), phone: cleanText(d.Phone), handoff: handoff,
		enteredAt: optTime(d.EnteredAt)}
	changed, args := cols.changedSince(d.stored)
	if t.w != nil {
		if slices.Contains(t.w.dialogIDs, d.ID) {
			// Updated twice in one transaction: the first is made now, so that the
			// second finds the revision it was given.
			if err := t.w.flushDialogs(t.tx); err != nil {
				return err
			}
		}
		t.w.addDialogUpdate(d.ID, d.Revision, changed, args, now, d.LastEventID)
	} else {
		var set strings.Builder
		for _, c := range changed {
			set.WriteString(c + " = ?, ")
		}
		args = append(args, now, d.LastEventID, d.ID, d.Revision)
		n, err := t.exec(`UPDATE dialogs SET `+set.String()+`updated_at = ?, last_event_id = ?, revision = revision + 1
			WHERE id = ? AND revision = ?`, args...)
		if err != nil {
			return fmt.Errorf("update dialog %d: %w", d.ID, err)
		}
		if n != 1 {
			return fmt.Errorf("update dialog %d at revision %d: %w", d.ID, d.Revision, ErrConflict)
		}
	}
	d.Revision++
	d.UpdatedAt = now
	d.stored = cols
	if d.Status.Ended() {
		if err := t.ReleaseKeys(d.ID); err != nil {
			return err
		}
		if err := t.CancelTimers(d.ID, ""); err != nil {
			return err
		}
	}
	return nil
}

// storedColumns are the columns UpdateDialog may change, encoded as stored.
type storedColumns struct {
	flowHash, state, status, vars, channel, contactID, phone, handoff string
	enteredAt                                                         any // nil or a time.Time
}

// changedSince returns the columns that differ from old, and their values; every
// column when old is unknown.
func (c *storedColumns) changedSince(old *storedColumns) ([]string, []any) {
	var cols []string
	args := make([]any, 0, 13)
	all := old == nil
	if all {
		old = &storedColumns{}
	}
	add := func(col string, changed bool, v any) {
		if all || changed {
			cols = append(cols, col)
			args = append(args, v)
		}
	}
	add("flow_hash", c.flowHash != old.flowHash, c.flowHash)
	add("state", c.state != old.state, c.state)
	add("status", c.status != old.status, c.status)
	add("vars", c.vars != old.vars, c.vars)
	add("channel", c.channel != old.channel, c.channel)
	add("contact_id", c.contactID != old.contactID, c.contactID)
	add("phone", c.phone != old.phone, c.phone)
	add("handoff_until", c.handoff != old.handoff, c.handoff)
	add("entered_at", !sameTime(c.enteredAt, old.enteredAt), c.enteredAt)
	return cols, args
}

// sameTime compares two column values that are each nil or a time.Time.
func sameTime(a, b any) bool {
	ta, okA := a.(time.Time)
	tb, okB := b.(time.Time)
	if !okA || !okB {
		return okA == okB
	}
	return ta.Equal(tb)
}

// BindKey binds key to the dialog in the ordinary scope; see StepTx.BindKey.
func (t *stepTx) BindKey(dialogID int64, key string) error { return t.BindKeyIn("", dialogID, key) }

// BindKeyIn binds key to the dialog in scope; see StepTx.BindKeyIn.
func (t *stepTx) BindKeyIn(scope string, dialogID int64, key string) error {
	key = cleanText(key)
	scope = cleanText(scope)
	if key == "" {
		return fmt.Errorf("bind key to dialog %d: empty key", dialogID)
	}
	// A second round follows taking the key over from an ended dialog, or its owner
	// releasing it between our insert and our look-up; a third would mean a livelock.
	for range 3 {
		n, err := t.exec(`INSERT INTO dialog_keys (key, dialog_id, active, created_at, scope) VALUES (?, ?, TRUE, ?, ?)
			ON CONFLICT (scope, key) WHERE active DO NOTHING`, key, dialogID, dbTime(t.s.now()), scope)
		if err != nil {
			return fmt.Errorf("bind key %q to dialog %d: %w", key, dialogID, err)
		}
		if n == 1 {
			return nil
		}
		if t.w != nil {
			// The owner's status is read: kept updates of dialogs are made first.
			if err := t.w.flushDialogs(t.tx); err != nil {
				return err
			}
		}
		var owners []struct {
			DialogID int64  `gorm:"column:dialog_id"`
			Status   string `gorm:"column:status"`
		}
		if err := t.tx.Raw(`SELECT k.dialog_id, d.status FROM dialog_keys k JOIN dialogs d ON d.id = k.dialog_id
			WHERE k.key = ? AND k.scope = ? AND k.active`, key, scope).Scan(&owners).Error; err != nil {
			return fmt.Errorf("bind key %q to dialog %d: find owner: %w", key, dialogID, err)
		}
		switch {
		case len(owners) == 0:
			continue
		case owners[0].DialogID == dialogID:
			return nil
		case dialog.Status(owners[0].Status).Ended():
			// Ended dialogs release their keys; one that did not must not hold them.
			if err := t.tx.Exec(`UPDATE dialog_keys SET active = FALSE WHERE key = ? AND scope = ? AND active AND dialog_id = ?`,
				key, scope, owners[0].DialogID).Error; err != nil {
				return fmt.Errorf("bind key %q to dialog %d: release from ended dialog: %w", key, dialogID, err)
			}
		default:
			return fmt.Errorf("bind key %q to dialog %d: held by dialog %d: %w", key, dialogID, owners[0].DialogID, ErrKeyTaken)
		}
	}
	return fmt.Errorf("bind key %q to dialog %d: key keeps changing hands: %w", key, dialogID, ErrConflict)
}

// ReleaseKeys deactivates every active key of the dialog.
func (t *stepTx) ReleaseKeys(dialogID int64) error {
	if _, err := t.exec(`UPDATE dialog_keys SET active = FALSE WHERE dialog_id = ? AND active`, dialogID); err != nil {
		return fmt.Errorf("release keys of dialog %d: %w", dialogID, err)
	}
	return nil
}

// AppendHistory appends entries: on SQLite with the other writes kept until the
// step ends (see deferredWrites), on PostgreSQL with one statement per chunk.
func (t *stepTx) AppendHistory(entries ...HistoryEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := dbTime(t.s.now())
	type line struct {
		at                     time.Time
		kind, from, to, detail string
	}
	lines := make([]line, len(entries))
	for i, h := range entries {
		detail, err := rawJSON("detail", h.Detail)
		if err != nil {
			return fmt.Errorf("append %s history of dialog %d: %w", h.Kind, h.DialogID, err)
		}
		if !h.Kind.Valid() {
			return fmt.Errorf("append history of dialog %d: unknown kind %q", h.DialogID, h.Kind)
		}
		at := now
		if !h.At.IsZero() {
			at = dbTime(h.At)
		}
		lines[i] = line{at, cleanText(string(h.Kind)), cleanText(h.FromState), cleanText(h.ToState), detail}
	}
	if t.w != nil {
		for i, h := range entries {
			l := &lines[i]
			t.w.addHistory(h.DialogID, l.at, l.kind, h.EventSeq, l.from, l.to, l.detail)
		}
		return nil
	}
	for start := 0; start < len(entries); start += maxRowsPerInsert {
		end := min(start+maxRowsPerInsert, len(entries))
		var q strings.Builder
		q.WriteString(`INSERT INTO history (dialog_id, at, kind, event_id, from_state, to_state, detail) VALUES `)
		args := make([]any, 0, 7*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			l := &lines[i]
			args = append(args, entries[i].DialogID, l.at, l.kind, entries[i].EventSeq, l.from, l.to, l.detail)
		}
		if _, err := t.exec(q.String(), args...); err != nil {
			return fmt.Errorf("append history of dialog %d: %w", entries[start].DialogID, err)
		}
	}
	return nil
}

// ScheduleTimer inserts a pending timer and sets its ID, Status and CreatedAt.
func (t *stepTx) ScheduleTimer(tm *Timer) error {
	if tm.DueAt.IsZero() || tm.State == "" {
		return fmt.Errorf("schedule timer of dialog %d: due time and state are required", tm.DialogID)
	}
	now := dbTime(t.s.now())
	tm.DueAt = dbTime(tm.DueAt)
	var id int64
	var err error
	if t.w != nil {
		id, err = t.w.addTimer(t.tx, tm.DialogID, cleanText(tm.State), cleanText(tm.Name), tm.DueAt, now)
	} else {
		id, err = t.insert(`INSERT INTO timers (dialog_id, state, name, due_at, status, created_at)
			VALUES (?, ?, ?, ?, 'pending', ?)`,
			tm.DialogID, cleanText(tm.State), cleanText(tm.Name), tm.DueAt, now)
	}
	if err != nil {
		return fmt.Errorf("schedule timer %s of dialog %d: %w", tm.Name, tm.DialogID, err)
	}
	tm.ID, tm.Status, tm.CreatedAt = id, TimerPending, now
	return nil
}

// CancelTimers cancels the dialog's pending timers of state ("" = all). On SQLite
// the cancel is kept until the step ends (see deferredWrites.addCancel).
func (t *stepTx) CancelTimers(dialogID int64, state string) error {
	state = cleanText(state)
	if t.w != nil {
		t.w.addCancel(dialogID, state)
		return nil
	}
	q := `UPDATE timers SET status = 'cancelled' WHERE dialog_id = ? AND status = 'pending'`
	args := []any{dialogID}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	if _, err := t.exec(q, args...); err != nil {
		return fmt.Errorf("cancel timers of dialog %d: %w", dialogID, err)
	}
	return nil
}

// FireTimer marks a pending timer fired; false when it no longer was pending. The
// kept cancels are made first (one of them may be of this timer), and the kept
// timers when it is one of them.
func (t *stepTx) FireTimer(id int64) (bool, error) {
	if t.w != nil && (len(t.w.cancels.rows) > 0 || slices.Contains(t.w.timerIDs, id)) {
		if err := t.w.flushCancels(t.tx); err != nil {
			return false, err
		}
	}
	n, err := t.exec(`UPDATE timers SET status = 'fired' WHERE id = ? AND status = 'pending'`, id)
	if err != nil {
		return false, fmt.Errorf("fire timer %d: %w", id, err)
	}
	return n == 1, nil
}

// TimerStatus returns a timer's status; see StepTx.TimerStatus.
func (t *stepTx) TimerStatus(id int64) (TimerStatus, error) {
	if t.w != nil && (len(t.w.cancels.rows) > 0 || slices.Contains(t.w.timerIDs, id)) {
		if err := t.w.flushCancels(t.tx); err != nil {
			return "", err
		}
	}
	var st []string
	if err := t.tx.Raw(`SELECT status FROM timers WHERE id = ?`, id).Scan(&st).Error; err != nil {
		return "", fmt.Errorf("read timer %d: %w", id, err)
	}
	if len(st) == 0 {
		return "", fmt.Errorf("read timer %d: %w", id, ErrNotFound)
	}
	return TimerStatus(st[0]), nil
}

// Enqueue inserts a pending outbox item; see StepTx.Enqueue.
func (t *stepTx) Enqueue(item *OutboxItem) error {
	if item.Kind == "" {
		return errors.New("enqueue outbox item: empty kind")
	}
	params, err := rawJSON("params", item.Params)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", item.Kind, err)
	}
	now := dbTime(t.s.now())
	nextAt := now
	if !item.NextAt.IsZero() {
		nextAt = dbTime(item.NextAt)
	}
	var id int64
	if t.w != nil {
		id, err = t.w.addOutbox(t.tx, item.DialogID, cleanText(item.Kind), params, nextAt, now)
	} else {
		id, err = t.insert(`INSERT INTO outbox (dialog_id, kind, params, status, attempts, next_at, created_at, updated_at)
			VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)`,
			item.DialogID, cleanText(item.Kind), params, nextAt, now, now)
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", item.Kind, err)
	}
	item.ID, item.Status, item.Attempts, item.NextAt = id, OutboxPending, 0, nextAt
	item.CreatedAt, item.UpdatedAt, item.LockedUntil = now, now, time.Time{}
	return nil
}

// MarkEvent records the outcome of one processing attempt of an event. On SQLite
// the update is kept until the step ends (see deferredWrites), and a missing or
// settled event fails the step there.
func (t *stepTx) MarkEvent(seq int64, status EventStatus, dialogID *int64, errText string) error {
	if !status.Valid() {
		return fmt.Errorf("mark event %d: unknown status %q", seq, status)
	}
	if t.w != nil {
		if slices.Contains(t.w.markIDs, seq) {
			// Marked twice in one transaction: the first is made now, so that the
			// second finds the event settled.
			if err := t.w.flushMarks(t.tx); err != nil {
				return err
			}
		}
		t.w.addMark(seq, status, dialogID, cleanText(errText))
		return nil
	}
	n, err := t.exec(`UPDATE events SET status = ?, dialog_id = ?, error = ?, attempts = attempts + 1
		WHERE id = ? AND status = 'pending'`,
		string(status), dialogID, cleanText(errText), seq)
	if err != nil {
		return fmt.Errorf("mark event %d %s: %w", seq, status, err)
	}
	if n == 1 {
		return nil
	}
	if err := t.tx.Raw(`SELECT COUNT(*) FROM events WHERE id = ?`, seq).Scan(&n).Error; err != nil {
		return fmt.Errorf("mark event %d %s: %w", seq, status, err)
	}
	if n == 0 {
		return fmt.Errorf("mark event %d %s: %w", seq, status, ErrNotFound)
	}
	return fmt.Errorf("mark event %d %s: %w", seq, status, ErrSettled)
}

// SaveFlowVersion stores a flow version unless its hash is already stored.
func (t *stepTx) SaveFlowVersion(v FlowVersion) error {
	return saveFlowVersion(t.tx, v, dbTime(t.s.now()))
}

// AdoptDialogs moves live dialogs to a new flow version as part of the step; see
// Store.AdoptDialogs. Kept writes are made first: the dialogs and timers it moves
// must be as the step left them.
func (t *stepTx) AdoptDialogs(flow, toHash string, moves map[string]string) (int64, error) {
	if t.w != nil {
		if err := t.w.flush(t.tx); err != nil {
			return 0, err
		}
	}
	return t.s.adoptDialogs(t.tx, flow, toHash, moves)
}

// AppendEvents stores events as part of the step; see Store.AppendEvents.
func (t *stepTx) AppendEvents(events []event.Event) ([]AppendResult, error) {
	res, err := t.s.appendEvents(events, func(fn func(*gorm.DB) error, _ ...*sql.TxOptions) error { return fn(t.tx) })
	if err != nil {
		return nil, err
	}
	return res, t.queueFetches(events, res)
}

// CompleteOutbox marks a running item done as part of the step. On SQLite the
// update is kept until the step ends (see deferredWrites), and an item no longer
// running fails the step there.
func (t *stepTx) CompleteOutbox(id int64, attempt int, result json.RawMessage) error {
	return t.complete(id, attempt, result, nil)
}

// CompleteSend marks a running send done with the message it sent, in the same
// update (kept on SQLite as CompleteOutbox's is); see StepTx.CompleteSend.
func (t *stepTx) CompleteSend(id int64, attempt int, result json.RawMessage, sent Delivery) error {
	msg := cleanText(sent.MessageID)
	if msg == "" || sent.Status.Rank() == 0 {
		return fmt.Errorf("complete send %d: want a message id and a delivery status, got %q and %q", id, msg, sent.Status)
	}
	return t.complete(id, attempt, result, &sentMessage{id: msg, status: string(sent.Status), code: cleanText(sent.Code),
		error: cleanText(sent.Error), at: deliveryTime(sent.At, t.s.now())})
}

// complete marks a running item done and, with sent, records the message it sent.
// The message's delivery is written as it is, without SetDelivery's guard: no item
// that runs has a message id yet (one is recorded only with the completion, and a
// completed item never runs again), so sent's is new and its delivery starts afresh.
func (t *stepTx) complete(id int64, attempt int, result json.RawMessage, sent *sentMessage) error {
	res, err := rawJSON("result", result)
	if err != nil {
		return fmt.Errorf("complete outbox item %d: %w", id, err)
	}
	if t.w == nil {
		set, args := `status = 'done', result = ?`, []any{res}
		if sent != nil {
			set += `, message_id = ?, delivery = ?, delivery_code = ?, delivery_error = ?, delivery_at = ?`
			args = append(args, sent.id, sent.status, sent.code, sent.error, sent.at)
		}
		return t.s.finishOutbox(t.tx, "complete", id, attempt, set, args...)
	}
	if err := t.flushDoneOf(id); err != nil {
		return err
	}
	t.w.addDone(id, attempt, dbTime(t.s.now()), res, sent)
	return nil
}

// flushDoneOf makes the kept insert and completions when one of them is of item
// id, so that what follows finds it as it is.
func (t *stepTx) flushDoneOf(id int64) error {
	if t.w == nil {
		return nil
	}
	if slices.Contains(t.w.outboxIDs, id) {
		if err := t.w.flushOutbox(t.tx); err != nil {
			return err
		}
	}
	if slices.Contains(t.w.doneIDs, id) {
		return t.w.flushDone(t.tx)
	}
	return nil
}

// RetryOutbox schedules another attempt of a running item as part of the step.
func (t *stepTx) RetryOutbox(id int64, attempt int, nextAt time.Time, errCode, errText string) error {
	if err := t.flushDoneOf(id); err != nil {
		return err
	}
	return t.s.retryOutbox(t.tx, id, attempt, nextAt, errCode, errText)
}

// FailOutbox ends a running item as failed or dead as part of the step.
func (t *stepTx) FailOutbox(id int64, attempt int, status OutboxStatus, errCode, errText string) error {
	if err := t.flushDoneOf(id); err != nil {
		return err
	}
	return t.s.failOutbox(t.tx, id, attempt, status, errCode, errText)
}

// ClaimOutbox claims due outbox items as part of the step; see Store.ClaimOutbox.
// Kept outbox writes are made first: a new item may be due, a completed one must
// not be claimed again.
func (t *stepTx) ClaimOutbox(now time.Time, limit int, lease time.Duration) ([]OutboxItem, error) {
	if t.w != nil {
		if err := errors.Join(t.w.flushOutbox(t.tx), t.w.flushDone(t.tx)); err != nil {
			return nil, err
		}
	}
	return t.s.claimOutbox(t.tx, now, limit, lease)
}

// deliveryRank is DeliveryStatus.Rank in SQL, over the column delivery.
var deliveryRank = func() string {
	var b strings.Builder
	b.WriteString("(CASE delivery")
	for _, s := range DeliveryStatuses {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", s, s.Rank())
	}
	b.WriteString(" ELSE 0 END)")
	return b.String()
}()

// SetDelivery records a send's outcome on its item; see StepTx.SetDelivery. The
// item's kept insert or completion is made first.
func (t *stepTx) SetDelivery(id int64, d Delivery) (bool, error) {
	if d.Status.Rank() == 0 {
		return false, fmt.Errorf("set delivery of outbox item %d: unknown status %q", id, d.Status)
	}
	if err := t.flushDoneOf(id); err != nil {
		return false, err
	}
	set, where := "", deliveryRank+` < ?`
	args := []any{string(d.Status), cleanText(d.Code), cleanText(d.Error), deliveryTime(d.At, t.s.now())}
	if msg := cleanText(d.MessageID); msg != "" {
		// A new message id (a requeued send) starts its delivery afresh.
		set, where = "message_id = ?, ", "(message_id <> ? OR "+where+")"
		args = append([]any{msg}, append(args, id, msg, d.Status.Rank())...)
	} else {
		args = append(args, id, d.Status.Rank())
	}
	n, err := t.exec(`UPDATE outbox SET `+set+`delivery = ?, delivery_code = ?, delivery_error = ?, delivery_at = ?
		WHERE id = ? AND `+where, args...)
	if err != nil {
		return false, fmt.Errorf("set delivery of outbox item %d: %w", id, err)
	}
	return n == 1, nil
}

// Receipt applies a receipt to the item that sent its message; see StepTx.Receipt.
// Kept completions are made first: the item may have been completed in this
// transaction.
func (t *stepTx) Receipt(d Delivery) (*OutboxItem, bool, error) {
	msg := cleanText(d.MessageID)
	if msg == "" || d.Status.Rank() == 0 {
		return nil, false, nil
	}
	if t.w != nil {
		if err := t.w.flushDone(t.tx); err != nil {
			return nil, false, err
		}
	}
	n, err := t.exec(`UPDATE outbox SET delivery = ?, delivery_code = ?, delivery_error = ?, delivery_at = ?
		WHERE message_id = ? AND `+deliveryRank+` < ?`,
		string(d.Status), cleanText(d.Code), cleanText(d.Error), deliveryTime(d.At, t.s.now()), msg, d.Status.Rank())
	if err != nil {
		return nil, false, fmt.Errorf("apply receipt of message: %w", err)
	}
	var rows []outboxRow
	if err := t.tx.Raw(`SELECT `+outboxColumns+` FROM outbox WHERE message_id = ? ORDER BY id LIMIT 1`, msg).
		Scan(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("read the item of a receipt: %w", err)
	}
	if len(rows) == 0 {
		if t.s.stray != nil {
			t.s.stray.add(msg)
		}
		return nil, false, nil
	}
	it := toOutbox(rows)[0]
	return &it, n > 0, nil
}

// deliveryTime is when a delivery was reported: at, or now when at is unknown.
func deliveryTime(at, now time.Time) time.Time {
	if at.IsZero() {
		at = now
	}
	return dbTime(at)
}

// ReceiptsOf reads the receipts about a message by their dedupe keys (a unique
// index) as part of the step; see StepTx.ReceiptsOf. On SQLite it reads only when
// a receipt about the message found no item (strayReceipts).
func (t *stepTx) ReceiptsOf(messageID string, keys []string) ([]Event, error) {
	if len(keys) == 0 || t.s.stray != nil && !t.s.stray.mayWait(cleanText(messageID)) {
		return nil, nil
	}
	clean := make([]string, len(keys))
	for i, k := range keys {
		clean[i] = cleanText(k)
	}
	var rows []eventRow
	if err := t.tx.Raw(`SELECT `+eventColumns+` FROM events WHERE dedupe_key IN ? ORDER BY id`, clean).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read the receipts of a message: %w", err)
	}
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		e, err := r.toEvent()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
