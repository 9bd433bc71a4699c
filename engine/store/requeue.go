package store

import (
	"context"
	"fmt"
	"time"
)

// GetOutbox returns one outbox item, or ErrNotFound.
func (s *GormStore) GetOutbox(ctx context.Context, id int64) (*OutboxItem, error) {
	var rows []outboxRow
	if err := s.read(ctx).Raw(`SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read outbox item %d: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read outbox item %d: %w", id, ErrNotFound)
	}
	return &toOutbox(rows)[0], nil
}

// RequeueOutbox queues a dead or failed item again; see Store.RequeueOutbox.
func (s *GormStore) RequeueOutbox(ctx context.Context, id int64, now time.Time) (*OutboxItem, error) {
	n, err := s.execSQL(s.conn(ctx), `UPDATE outbox SET status = 'pending', next_at = ?, attempts = 0,
		requeues = requeues + 1, locked_until = NULL, updated_at = ?
		WHERE id = ? AND status IN ('dead', 'failed')`, dbTime(now), dbTime(s.now()), id)
	if err != nil {
		return nil, fmt.Errorf("requeue outbox item %d: %w", id, err)
	}
	it, err := s.GetOutbox(ctx, id)
	if err != nil {
		return nil, err
	}
	if n != 1 {
		return it, fmt.Errorf("requeue outbox item %d: it is %s, not dead or failed: %w", id, it.Status, ErrConflict)
	}
	return it, nil
}

// RequeueEvent makes an unrouted or failed event pending again; see Store.RequeueEvent.
func (s *GormStore) RequeueEvent(ctx context.Context, seq int64) (*Event, error) {
	n, err := s.execSQL(s.conn(ctx), `UPDATE events SET status = 'pending', error = ''
		WHERE id = ? AND status IN ('unrouted', 'failed')`, seq)
	if err != nil {
		return nil, fmt.Errorf("requeue event %d: %w", seq, err)
	}
	e, err := s.GetEvent(ctx, seq)
	if err != nil {
		return nil, err
	}
	if n != 1 {
		return e, fmt.Errorf("requeue event %d: it is %s, not unrouted or failed: %w", seq, e.Status, ErrConflict)
	}
	return e, nil
}
