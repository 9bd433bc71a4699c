package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
)

// FileRow is one stored file: a downloaded attachment of an inbound message. Its
// content lives in the file store's folder at Path (relative to it); the row says
// what it is and what it belongs to, so that retention removes it with its
// dialog's history.
type FileRow struct {
	ID        string    `gorm:"column:id"`
	DialogID  *int64    `gorm:"column:dialog_id"`
	EventID   *int64    `gorm:"column:event_id"`
	Name      string    `gorm:"column:name"`
	MIME      string    `gorm:"column:mime"`
	Size      int64     `gorm:"column:size"`
	SHA256    string    `gorm:"column:sha256"`
	Path      string    `gorm:"column:path"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

const fileColumns = `id, dialog_id, event_id, name, mime, size, sha256, path, created_at`

// SaveFile records a file whose content was written at its path.
func (s *GormStore) SaveFile(ctx context.Context, f *FileRow) error {
	f.CreatedAt = dbTime(s.now())
	err := s.conn(ctx).Exec(`INSERT INTO files (`+fileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.DialogID, f.EventID, cleanText(f.Name), cleanText(f.MIME), f.Size, f.SHA256, f.Path, f.CreatedAt).Error
	if err != nil {
		return fmt.Errorf("record file %s: %w", f.ID, err)
	}
	return nil
}

// GetFile returns a stored file's row, or ErrNotFound.
func (s *GormStore) GetFile(ctx context.Context, id string) (*FileRow, error) {
	var rows []FileRow
	if err := s.read(ctx).Raw(`SELECT `+fileColumns+` FROM files WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read file %s: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read file %s: %w", id, ErrNotFound)
	}
	return &rows[0], nil
}

// AwaitingFiles reports whether an event stored before seq that carries one of
// keys still waits for its files (see event.AwaitsFiles): it is pending and was
// stored with files to fetch. Such an event holds its contact's later events back,
// so that a dialog sees its messages in the order they came.
func (s *GormStore) AwaitingFiles(ctx context.Context, before int64, keys []string) (bool, error) {
	if len(keys) == 0 {
		return false, nil
	}
	var rows []string
	if err := s.read(ctx).Raw(s.awaitingFilesSQL(), before).Scan(&rows).Error; err != nil {
		return false, fmt.Errorf("read events waiting for files: %w", err)
	}
	for _, r := range rows {
		var ks []string
		if json.Unmarshal([]byte(r), &ks) != nil {
			return true, nil // unreadable: assume the worst
		}
		for _, k := range ks {
			for _, want := range keys {
				if k == want {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// AwaitingFileKeys returns the keys of the pending events stored with files to
// fetch (each key once): those whose contacts' later events may have to wait.
func (s *GormStore) AwaitingFileKeys(ctx context.Context) ([]string, error) {
	var rows []string
	if err := s.read(ctx).Raw(s.awaitingFilesSQL(), int64(math.MaxInt64)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read events waiting for files: %w", err)
	}
	var keys []string
	seen := map[string]bool{}
	for _, r := range rows {
		var ks []string
		if err := json.Unmarshal([]byte(r), &ks); err != nil {
			return nil, fmt.Errorf("read events waiting for files: keys %q: %w", r, err)
		}
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// awaitingFilesSQL reads the keys of the pending events stored before ? that wait
// for files. The partial index holds only those, so the read costs next to nothing
// however many events are pending; SQLite's planner prefers events_status_id
// (status, id) on its own, which walks every pending event before the given one,
// so on SQLite the statement names the index.
func (s *GormStore) awaitingFilesSQL() string {
	from := `events`
	if s.dialect == dialectSQLite {
		from = `events INDEXED BY events_awaiting_files`
	}
	return `SELECT keys FROM ` + from + ` WHERE awaits_files AND status = 'pending' AND id < ?`
}

// queueFetches marks the appended events that come with files to download and
// queues the download of each (event.KindFetch), in the transaction that stored
// them: neither is ever without the other.
func (t *stepTx) queueFetches(events []event.Event, res []AppendResult) error {
	for i := range events {
		ev := &events[i]
		if res[i].Duplicate || !event.HasFetch(ev) {
			continue
		}
		params := map[string]any{}
		for k, v := range ev.Data[event.FieldFetch].(map[string]any) {
			params[k] = v
		}
		params["event"] = res[i].Seq
		raw, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("encode the fetch of event %d: %w", res[i].Seq, err)
		}
		if err := t.tx.Exec(`UPDATE events SET awaits_files = TRUE WHERE id = ?`, res[i].Seq).Error; err != nil {
			return fmt.Errorf("mark event %d as waiting for its files: %w", res[i].Seq, err)
		}
		if err := t.Enqueue(&OutboxItem{Kind: event.KindFetch, Params: raw}); err != nil {
			return err
		}
	}
	return nil
}

// SettleFiles adds fields (event.FieldFile and FieldFiles, or FieldFileError) to
// the data of a pending event whose files were being fetched.
func (t *stepTx) SettleFiles(seq int64, fields map[string]any) error {
	var rows []string
	if err := t.tx.Raw(`SELECT data FROM events WHERE id = ? AND status = 'pending'`, seq).Scan(&rows).Error; err != nil {
		return fmt.Errorf("read event %d: %w", seq, err)
	}
	if len(rows) == 0 {
		return nil // settled already (an operator's control, or a retention): nothing waits for the files
	}
	data := map[string]any{}
	if err := json.Unmarshal([]byte(rows[0]), &data); err != nil {
		return fmt.Errorf("read event %d: %w", seq, err)
	}
	for k, v := range fields {
		data[k] = v
	}
	raw, err := encodeJSON(data)
	if err != nil {
		return fmt.Errorf("encode event %d: %w", seq, err)
	}
	if err := t.tx.Exec(`UPDATE events SET data = ? WHERE id = ?`, raw, seq).Error; err != nil {
		return fmt.Errorf("update event %d: %w", seq, err)
	}
	return nil
}
