package store

import (
	"context"
	"fmt"
	"time"
)

// Backlog is the work waiting in the database at one moment: what the backlog
// gauges of /metrics show.
type Backlog struct {
	// InboxPending counts events not yet processed.
	InboxPending int64
	// InboxOldest is when the oldest pending event was received; zero when none is.
	InboxOldest time.Time
	// Outbox counts the actions that are pending, running, failed or dead, by
	// status; done ones, the bulk of the table, are not counted.
	Outbox map[OutboxStatus]int64
	// TimersDue counts pending timers due at or before the time asked about.
	TimersDue int64
}

// Backlog reads the backlog as of now. Every query walks an index over the rows
// it counts only (pending events, unfinished or failed actions, due timers), so a
// scrape stays cheap however much history the database holds.
func (s *GormStore) Backlog(ctx context.Context, now time.Time) (Backlog, error) {
	db := s.read(ctx)
	b := Backlog{Outbox: map[OutboxStatus]int64{}}
	if err := db.Raw(`SELECT COUNT(*) FROM events WHERE status = 'pending'`).Scan(&b.InboxPending).Error; err != nil {
		return Backlog{}, fmt.Errorf("count pending events: %w", err)
	}
	// Not MIN(received_at): an aggregate loses the column's type, and SQLite then
	// answers text. Ids grow in arrival order, so the first pending id is the oldest.
	var oldest []struct {
		At time.Time `gorm:"column:received_at"`
	}
	if err := db.Raw(`SELECT received_at FROM events WHERE status = 'pending' ORDER BY id LIMIT 1`).Scan(&oldest).Error; err != nil {
		return Backlog{}, fmt.Errorf("read the oldest pending event: %w", err)
	}
	if len(oldest) > 0 {
		b.InboxOldest = oldest[0].At.UTC()
	}
	var outbox []struct {
		Status string `gorm:"column:status"`
		N      int64  `gorm:"column:n"`
	}
	if err := db.Raw(`SELECT status, COUNT(*) AS n FROM outbox WHERE status IN ('pending', 'running', 'failed', 'dead')
		GROUP BY status`).Scan(&outbox).Error; err != nil {
		return Backlog{}, fmt.Errorf("count outbox items: %w", err)
	}
	for _, r := range outbox {
		b.Outbox[OutboxStatus(r.Status)] = r.N
	}
	if err := db.Raw(`SELECT COUNT(*) FROM timers WHERE status = 'pending' AND due_at <= ?`,
		dbTime(now)).Scan(&b.TimersDue).Error; err != nil {
		return Backlog{}, fmt.Errorf("count due timers: %w", err)
	}
	return b, nil
}
