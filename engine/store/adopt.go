package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// WaitingCount is the number of live dialogs of one flow version in one state.
type WaitingCount struct {
	Hash  string
	State string
	Count int64
}

// WaitingDialogs counts the live (active or handed-off) dialogs of flow that run a
// version other than exceptHash, by version and state.
func (s *GormStore) WaitingDialogs(ctx context.Context, flow, exceptHash string) ([]WaitingCount, error) {
	var rows []struct {
		Hash  string `gorm:"column:flow_hash"`
		State string `gorm:"column:state"`
		N     int64  `gorm:"column:n"`
	}
	err := s.read(ctx).Raw(`SELECT flow_hash, state, COUNT(*) AS n FROM dialogs
		WHERE flow = ? AND flow_hash <> ? AND status IN ('active', 'handoff')
		GROUP BY flow_hash, state ORDER BY state, flow_hash`, flow, exceptHash).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count waiting dialogs of %s: %w", flow, err)
	}
	out := make([]WaitingCount, len(rows))
	for i, r := range rows {
		out[i] = WaitingCount{Hash: r.Hash, State: r.State, Count: r.N}
	}
	return out, nil
}

// AdoptDialogs moves the live dialogs of flow that run another version to version
// toHash, in one transaction: a dialog in a state listed in moves continues in the
// state it maps to (its pending timers move with it), any other keeps its state.
// Each moved dialog's revision increases, so a step that loaded it before the move
// retries on the new version. It returns how many dialogs moved.
func (s *GormStore) AdoptDialogs(ctx context.Context, flow, toHash string, moves map[string]string) (int64, error) {
	var moved int64
	err := s.conn(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		moved, err = s.adoptDialogs(tx, flow, toHash, moves)
		return err
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// adoptDialogs is AdoptDialogs in the transaction tx.
func (s *GormStore) adoptDialogs(tx *gorm.DB, flow, toHash string, moves map[string]string) (int64, error) {
	var moved int64
	now := dbTime(s.now())
	live := `flow = ? AND flow_hash <> ? AND status IN ('active', 'handoff')`
	for from, to := range moves {
		if from == to {
			continue
		}
		if err := tx.Exec(`UPDATE timers SET state = ? WHERE status = 'pending' AND state = ?
			AND dialog_id IN (SELECT id FROM dialogs WHERE `+live+` AND state = ?)`,
			cleanText(to), cleanText(from), flow, toHash, cleanText(from)).Error; err != nil {
			return 0, fmt.Errorf("adopt dialogs of %s: move timers of state %s: %w", flow, from, err)
		}
		res := tx.Exec(`UPDATE dialogs SET state = ?, flow_hash = ?, revision = revision + 1, updated_at = ?
			WHERE `+live+` AND state = ?`, cleanText(to), toHash, now, flow, toHash, cleanText(from))
		if res.Error != nil {
			return 0, fmt.Errorf("adopt dialogs of %s: move dialogs in state %s: %w", flow, from, res.Error)
		}
		moved += res.RowsAffected
	}
	res := tx.Exec(`UPDATE dialogs SET flow_hash = ?, revision = revision + 1, updated_at = ? WHERE `+live,
		toHash, now, flow, toHash)
	if res.Error != nil {
		return 0, fmt.Errorf("adopt dialogs of %s: move dialogs: %w", flow, res.Error)
	}
	return moved + res.RowsAffected, nil
}
