package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Purged counts the rows one purge removed, by kind.
type Purged struct {
	Dialogs, Keys, History, Timers, Outbox, Events, Contacts, Files int64
	// FilePaths are the contents of the files whose rows were deleted, relative to
	// the file store's folder: the caller removes them (files.Store.Remove).
	FilePaths []string
}

// Add adds q's counts to p.
func (p *Purged) Add(q Purged) {
	p.Dialogs += q.Dialogs
	p.Keys += q.Keys
	p.History += q.History
	p.Timers += q.Timers
	p.Outbox += q.Outbox
	p.Events += q.Events
	p.Contacts += q.Contacts
	p.Files += q.Files
	p.FilePaths = append(p.FilePaths, q.FilePaths...)
}

// Total is the number of rows removed.
func (p Purged) Total() int64 {
	return p.Dialogs + p.Keys + p.History + p.Timers + p.Outbox + p.Events + p.Contacts + p.Files
}

// Kinds lists the counts by kind name (dialogs, keys, history, timers, outbox,
// events, contacts, files), in that order.
func (p Purged) Kinds() []PurgedKind {
	return []PurgedKind{{"dialogs", p.Dialogs}, {"keys", p.Keys}, {"history", p.History}, {"timers", p.Timers},
		{"outbox", p.Outbox}, {"events", p.Events}, {"contacts", p.Contacts}, {"files", p.Files}}
}

// PurgedKind is one kind of row and how many of them a purge removed.
type PurgedKind struct {
	Kind  string
	Count int64
}

// endedBefore is the condition, on the dialogs table, of a dialog the retention may
// purge: it ended before the cut-off (the first parameter) and nothing of it is in
// flight: no event waits to be processed for it, and no action of it waits or runs
// (its outcome would come back to the dialog).
const endedBefore = `status IN ('finished', 'abandoned', 'failed') AND updated_at < ?
	AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dialog_id = dialogs.id AND o.status IN ('pending', 'running'))
	AND NOT EXISTS (SELECT 1 FROM events e WHERE e.dialog_id = dialogs.id AND e.status = 'pending')`

// EndedDialogs returns the ids of up to limit dialogs the retention may purge (they
// ended before cutoff and have nothing in flight), oldest first. Active and
// handed-off dialogs are never among them.
func (s *GormStore) EndedDialogs(ctx context.Context, cutoff time.Time, limit int) ([]int64, error) {
	var ids []int64
	if err := s.read(ctx).Raw(`SELECT id FROM dialogs WHERE `+endedBefore+` ORDER BY id LIMIT ?`,
		dbTime(cutoff), max(limit, 1)).Scan(&ids).Error; err != nil {
		return nil, fmt.Errorf("find dialogs ended before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return ids, nil
}

// PurgeDialogs deletes, in one transaction, those of ids that may still be purged
// (see EndedDialogs; the condition is checked again inside the transaction) with
// everything that belongs to them: history, timers, correlation keys, outbox items
// and events. It reports what it removed.
func (s *GormStore) PurgeDialogs(ctx context.Context, ids []int64, cutoff time.Time) (Purged, error) {
	var p Purged
	if len(ids) == 0 {
		return p, nil
	}
	err := s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		lock := ""
		if s.dialect == dialectPostgres {
			lock = " FOR UPDATE"
		}
		var keep []int64
		if err := tx.Raw(`SELECT id FROM dialogs WHERE id IN ? AND `+endedBefore+lock, ids, dbTime(cutoff)).
			Scan(&keep).Error; err != nil {
			return fmt.Errorf("check the dialogs: %w", err)
		}
		if len(keep) == 0 {
			return nil
		}
		slices.Sort(keep)
		// Files first: they belong to the dialogs' events (or to the dialogs). The
		// files of an event that went to a dialog still kept stay with the event.
		var err error
		if p.Files, p.FilePaths, err = deleteFiles(tx, `(dialog_id IN ? OR event_id IN (SELECT id FROM events WHERE dialog_id IN ?))
				AND NOT EXISTS (SELECT 1 FROM event_deliveries v WHERE v.event_id = files.event_id AND v.dialog_id NOT IN ?)`,
			keep, keep, keep); err != nil {
			return err
		}
		// History first: its rows refer to the events deleted after it.
		for _, d := range []struct {
			n     *int64
			table string
			where string
		}{
			{&p.History, "history", "dialog_id IN ?"},
			{&p.Timers, "timers", "dialog_id IN ?"},
			{&p.Keys, "dialog_keys", "dialog_id IN ?"},
			{&p.Outbox, "outbox", "dialog_id IN ?"},
			// An event that went to several dialogs goes with the last of them: until
			// then it stays (its dialog_id cleared), and PurgeUnattached leaves it.
			{&p.Events, "events", "dialog_id IN ? AND NOT EXISTS (SELECT 1 FROM event_deliveries v WHERE v.event_id = events.id AND v.dialog_id NOT IN ?)"},
			{new(int64), "event_deliveries", "dialog_id IN ?"},
			{&p.Dialogs, "dialogs", "id IN ?"},
		} {
			args := []any{keep}
			if strings.Count(d.where, "?") == 2 {
				args = append(args, keep)
			}
			res := tx.Exec(`DELETE FROM `+d.table+` WHERE `+d.where, args...)
			if res.Error != nil {
				return fmt.Errorf("delete from %s: %w", d.table, res.Error)
			}
			*d.n = res.RowsAffected
		}
		return nil
	})
	if err != nil {
		return Purged{}, fmt.Errorf("purge %d dialogs: %w", len(ids), err)
	}
	return p, nil
}

// deleteFiles deletes the rows of the files matching where and returns how many
// and their paths.
func deleteFiles(tx *gorm.DB, where string, args ...any) (int64, []string, error) {
	var paths []string
	if err := tx.Raw(`SELECT path FROM files WHERE `+where, args...).Scan(&paths).Error; err != nil {
		return 0, nil, fmt.Errorf("find files: %w", err)
	}
	if len(paths) == 0 {
		return 0, nil, nil
	}
	res := tx.Exec(`DELETE FROM files WHERE `+where, args...)
	if res.Error != nil {
		return 0, nil, fmt.Errorf("delete from files: %w", res.Error)
	}
	return res.RowsAffected, paths, nil
}

// PurgeUnattached deletes, in one transaction, up to limit rows of each kind that
// belong to no dialog and were settled before cutoff: processed and unrouted
// events, finished outbox items (done, failed, dead), and the last-message times
// of contacts not heard from since (their 24-hour window closed long ago). Failed
// events are kept: each one is something an operator should look at. It reports
// what it removed; fewer than limit of every kind means nothing of the kind is left.
func (s *GormStore) PurgeUnattached(ctx context.Context, cutoff time.Time, limit int) (Purged, error) {
	var p Purged
	at := dbTime(cutoff)
	limit = max(limit, 1)
	err := s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		// The files of the events about to go, first.
		var err error
		if p.Files, p.FilePaths, err = deleteFiles(tx, `event_id IN (SELECT id FROM events
				WHERE status IN ('processed', 'unrouted') AND dialog_id IS NULL AND received_at < ?
				AND NOT EXISTS (SELECT 1 FROM event_deliveries v WHERE v.event_id = events.id)
				ORDER BY id LIMIT ?)`, at, limit); err != nil {
			return err
		}
		for _, d := range []struct {
			n    *int64
			what string
			stmt string
		}{
			// Ids grow with time: the oldest rows come first, and the scan ends at
			// the first limit rows that qualify.
			{&p.Events, "events", `DELETE FROM events WHERE id IN (SELECT id FROM events
				WHERE status IN ('processed', 'unrouted') AND dialog_id IS NULL AND received_at < ?
				AND NOT EXISTS (SELECT 1 FROM event_deliveries v WHERE v.event_id = events.id)
				ORDER BY id LIMIT ?)`},
			{&p.Outbox, "outbox items", `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
				WHERE status IN ('done', 'failed', 'dead') AND dialog_id IS NULL AND updated_at < ?
				ORDER BY id LIMIT ?)`},
			{&p.Contacts, "contacts", `DELETE FROM contacts WHERE (channel, contact_id) IN (SELECT channel, contact_id
				FROM contacts WHERE last_inbound_at < ? LIMIT ?)`},
		} {
			res := tx.Exec(d.stmt, at, limit)
			if res.Error != nil {
				return fmt.Errorf("delete %s: %w", d.what, res.Error)
			}
			*d.n = res.RowsAffected
		}
		return nil
	})
	if err != nil {
		return Purged{}, fmt.Errorf("purge rows of no dialog: %w", err)
	}
	return p, nil
}
