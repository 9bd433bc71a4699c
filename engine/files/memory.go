package files

import (
	"context"
	"fmt"
	"sync"

	"github.com/fixit-exchange/fixit/engine/store"
)

// MemoryDB keeps file rows in memory: a DB for tests and tools that have no
// database. It is safe for concurrent use.
type MemoryDB struct {
	mu   sync.Mutex
	rows map[string]store.FileRow
}

// NewMemoryDB returns an empty MemoryDB.
func NewMemoryDB() *MemoryDB { return &MemoryDB{rows: map[string]store.FileRow{}} }

// SaveFile records f.
func (m *MemoryDB) SaveFile(_ context.Context, f *store.FileRow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[f.ID] = *f
	return nil
}

// GetFile returns the row of id, or store.ErrNotFound.
func (m *MemoryDB) GetFile(_ context.Context, id string) (*store.FileRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.rows[id]
	if !ok {
		return nil, fmt.Errorf("read file %s: %w", id, store.ErrNotFound)
	}
	return &f, nil
}

// Rows returns every row, for tests.
func (m *MemoryDB) Rows() []store.FileRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.FileRow, 0, len(m.rows))
	for _, f := range m.rows {
		out = append(out, f)
	}
	return out
}
