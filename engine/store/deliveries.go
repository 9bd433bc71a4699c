package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventDelivery is one application of an event to a dialog. Most events go to one
// dialog, which the event's own row names; when an alongside flow takes an event
// too, every dialog the event was applied to is recorded as a delivery, once per
// (event, dialog).
type EventDelivery struct {
	EventSeq int64
	DialogID int64
	Flow     string
	// Scope is "" for the ordinary routing's dialog, the flow's name for an
	// alongside flow's.
	Scope string
	// Status is EventProcessed or EventFailed.
	Status  EventStatus
	Started bool // the event started the dialog
	Error   string
	At      time.Time
}

// ScopedDialog is the live dialog that holds an event's key in a scope.
type ScopedDialog struct {
	Scope    string
	DialogID int64
}

// RecordDeliveries records deliveries, one statement each; see
// StepTx.RecordDeliveries.
func (t *stepTx) RecordDeliveries(ds []EventDelivery) error {
	now := dbTime(t.s.now())
	for _, d := range ds {
		if d.Status != EventProcessed && d.Status != EventFailed {
			return fmt.Errorf("record delivery of event %d to dialog %d: status %q", d.EventSeq, d.DialogID, d.Status)
		}
		at := now
		if !d.At.IsZero() {
			at = dbTime(d.At)
		}
		n, err := t.exec(`INSERT INTO event_deliveries (event_id, dialog_id, flow, scope, status, started, error, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (event_id, dialog_id) DO UPDATE SET status = excluded.status, error = excluded.error, at = excluded.at
			WHERE event_deliveries.status <> 'processed'`,
			d.EventSeq, d.DialogID, cleanText(d.Flow), cleanText(d.Scope), string(d.Status), d.Started, cleanText(d.Error), at)
		if err != nil {
			return fmt.Errorf("record delivery of event %d to dialog %d: %w", d.EventSeq, d.DialogID, err)
		}
		if n != 1 {
			return fmt.Errorf("record delivery of event %d to dialog %d: %w", d.EventSeq, d.DialogID, ErrSettled)
		}
	}
	return nil
}

// FindScopedDialogs returns the live dialogs bound to keys outside the ordinary
// scope; see Store.FindScopedDialogs.
func (s *GormStore) FindScopedDialogs(ctx context.Context, keys []string) ([]ScopedDialog, error) {
	clean := cleanKeys(keys)
	if len(clean) == 0 {
		return nil, nil
	}
	var rows []struct {
		Scope    string `gorm:"column:scope"`
		Key      string `gorm:"column:key"`
		DialogID int64  `gorm:"column:dialog_id"`
	}
	if err := s.read(ctx).Raw(`SELECT k.scope, k.key, k.dialog_id FROM dialog_keys k JOIN dialogs d ON d.id = k.dialog_id
		WHERE k.active AND k.scope <> '' AND k.key IN ? AND d.status IN ('active', 'handoff')`, clean).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("find dialogs of alongside flows by keys: %w", err)
	}
	// Per scope, the dialog of the first key in the event's order.
	slices.SortFunc(rows, func(a, b struct {
		Scope    string `gorm:"column:scope"`
		Key      string `gorm:"column:key"`
		DialogID int64  `gorm:"column:dialog_id"`
	}) int {
		if c := strings.Compare(a.Scope, b.Scope); c != 0 {
			return c
		}
		return slices.Index(clean, a.Key) - slices.Index(clean, b.Key)
	})
	var out []ScopedDialog
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Scope != r.Scope {
			out = append(out, ScopedDialog{Scope: r.Scope, DialogID: r.DialogID})
		}
	}
	return out, nil
}

// deliveryRow is a row of the event_deliveries table as stored.
type deliveryRow struct {
	EventID  int64     `gorm:"column:event_id"`
	DialogID int64     `gorm:"column:dialog_id"`
	Flow     string    `gorm:"column:flow"`
	Scope    string    `gorm:"column:scope"`
	Status   string    `gorm:"column:status"`
	Started  bool      `gorm:"column:started"`
	Error    string    `gorm:"column:error"`
	At       time.Time `gorm:"column:at"`
}

const deliveryColumns = `event_id, dialog_id, flow, scope, status, started, error, at`

func (r *deliveryRow) toDelivery() EventDelivery {
	return EventDelivery{EventSeq: r.EventID, DialogID: r.DialogID, Flow: r.Flow, Scope: r.Scope, Status: EventStatus(r.Status),
		Started: r.Started, Error: r.Error, At: r.At.UTC()}
}

// EventDeliveries returns an event's deliveries, by dialog id.
func (s *GormStore) EventDeliveries(ctx context.Context, seq int64) ([]EventDelivery, error) {
	m, err := s.DeliveriesOf(ctx, []int64{seq})
	return m[seq], err
}

// DeliveriesOf returns the deliveries of events, by event and then dialog id; an
// event without any has no entry.
func (s *GormStore) DeliveriesOf(ctx context.Context, seqs []int64) (map[int64][]EventDelivery, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	var rows []deliveryRow
	if err := s.read(ctx).Raw(`SELECT `+deliveryColumns+` FROM event_deliveries WHERE event_id IN ?
		ORDER BY event_id, dialog_id`, seqs).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read event deliveries: %w", err)
	}
	out := map[int64][]EventDelivery{}
	for i := range rows {
		out[rows[i].EventID] = append(out[rows[i].EventID], rows[i].toDelivery())
	}
	return out, nil
}
