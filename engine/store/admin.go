package store

import (
	"context"
	"fmt"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

// Admin lists page newest first by id: a cursor is the last id of the previous page,
// so a page is "id < cursor ORDER BY id DESC LIMIT n", stable under concurrent inserts
// (new rows appear only before the first page).

// pageQuery adds the cursor condition to w and returns the ORDER/LIMIT tail, which
// asks for one row more than the page to learn whether another page follows.
func pageQuery(list string, w *where, p Page) (tail string, limit int, err error) {
	after, err := decodeCursor(list, p.Cursor)
	if err != nil {
		return "", 0, err
	}
	if after > 0 {
		w.add("id < ?", after)
	}
	limit = clampLimit(p.Limit)
	return " ORDER BY id DESC" + limitClause(limit+1), limit, nil
}

// nextCursor cuts rows to the page and returns the cursor of the page after it.
func nextCursor[T any](list string, rows []T, limit int, id func(*T) int64) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, encodeCursor(list, id(&rows[limit-1]))
}

// ListDialogs returns one page of dialogs, newest first.
func (s *GormStore) ListDialogs(ctx context.Context, f DialogFilter, p Page) ([]Dialog, string, error) {
	rows, next, err := s.dialogsMatching(ctx, DialogSearch{DialogFilter: f}, p)
	if err != nil {
		return nil, "", fmt.Errorf("list dialogs: %w", err)
	}
	return rows, next, nil
}

// ListEvents returns one page of events, newest first.
func (s *GormStore) ListEvents(ctx context.Context, f EventFilter, p Page) ([]Event, string, error) {
	var w where
	w.addEq("source", f.Source)
	w.addEq("status", string(f.Status))
	if f.DialogID != 0 {
		w.add("(dialog_id = ? OR id IN (SELECT event_id FROM event_deliveries WHERE dialog_id = ?))", f.DialogID, f.DialogID)
	}
	tail, limit, err := pageQuery("events", &w, p)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	var rows []eventRow
	if err := s.read(ctx).Raw(`SELECT `+eventColumns+` FROM events`+w.String()+tail, w.args...).Scan(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	rows, next := nextCursor("events", rows, limit, func(r *eventRow) int64 { return r.ID })
	out, err := toEvents(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	if err := s.withDeliveries(ctx, out); err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	return out, next, nil
}

// withDeliveries fills the Deliveries of events that went to several dialogs.
func (s *GormStore) withDeliveries(ctx context.Context, evs []Event) error {
	seqs := make([]int64, len(evs))
	for i := range evs {
		seqs[i] = evs[i].Seq
	}
	m, err := s.DeliveriesOf(ctx, seqs)
	if err != nil {
		return err
	}
	for i := range evs {
		evs[i].Deliveries = m[evs[i].Seq]
	}
	return nil
}

// ListOutbox returns one page of outbox items, newest first.
func (s *GormStore) ListOutbox(ctx context.Context, f OutboxFilter, p Page) ([]OutboxItem, string, error) {
	var w where
	w.addEq("status", string(f.Status))
	if f.DialogID != 0 {
		w.add("dialog_id = ?", f.DialogID)
	}
	tail, limit, err := pageQuery("outbox", &w, p)
	if err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	var rows []outboxRow
	if err := s.read(ctx).Raw(`SELECT `+outboxColumns+` FROM outbox`+w.String()+tail, w.args...).Scan(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	rows, next := nextCursor("outbox", rows, limit, func(r *outboxRow) int64 { return r.ID })
	return toOutbox(rows), next, nil
}

// DialogHistory returns a dialog's history, oldest first.
func (s *GormStore) DialogHistory(ctx context.Context, dialogID int64) ([]HistoryEntry, error) {
	var rows []historyRow
	if err := s.read(ctx).Raw(`SELECT `+historyColumns+` FROM history WHERE dialog_id = ? ORDER BY id`,
		dialogID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read history of dialog %d: %w", dialogID, err)
	}
	out := make([]HistoryEntry, len(rows))
	for i, r := range rows {
		out[i] = HistoryEntry{
			ID: r.ID, DialogID: r.DialogID, At: r.At.UTC(), Kind: dialog.HistoryKind(r.Kind), EventSeq: r.EventID,
			FromState: r.FromState, ToState: r.ToState, Detail: toRaw(r.Detail),
		}
	}
	return out, nil
}

// DialogTimers returns all timers of a dialog, oldest first.
func (s *GormStore) DialogTimers(ctx context.Context, dialogID int64) ([]Timer, error) {
	var rows []timerRow
	if err := s.read(ctx).Raw(`SELECT `+timerColumns+` FROM timers WHERE dialog_id = ? ORDER BY id`,
		dialogID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read timers of dialog %d: %w", dialogID, err)
	}
	return toTimers(rows), nil
}

// Counts returns the number of dialogs per flow, state and status.
//
// It scans the dialogs table (through its indexes); callers scraping it for metrics
// should do so at scrape intervals, not per request.
func (s *GormStore) Counts(ctx context.Context) ([]DialogCount, error) {
	var rows []struct {
		Flow   string `gorm:"column:flow"`
		State  string `gorm:"column:state"`
		Status string `gorm:"column:status"`
		N      int64  `gorm:"column:n"`
	}
	if err := s.read(ctx).Raw(`SELECT flow, state, status, COUNT(*) AS n FROM dialogs
		GROUP BY flow, state, status ORDER BY flow, state, status`).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count dialogs: %w", err)
	}
	out := make([]DialogCount, len(rows))
	for i, r := range rows {
		out[i] = DialogCount{Flow: r.Flow, State: r.State, Status: dialog.Status(r.Status), Count: r.N}
	}
	return out, nil
}
