package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

// The reads of the operators' console: an overview of the whole store, a search of
// dialogs, the events of one dialog and how often each branch of the flows was
// taken. They only read, on the store's read connections.

// ConsoleReader is what the operators' console reads besides Store. *GormStore
// implements it.
type ConsoleReader interface {
	// Overview counts what an operator watches, as of now.
	Overview(ctx context.Context, now time.Time) (*Overview, error)
	// SearchDialogs returns one page of dialogs matching s, newest first, and the
	// next cursor ("" at the end).
	SearchDialogs(ctx context.Context, s DialogSearch, p Page) ([]Dialog, string, error)
	// EventsByID returns the stored events with the given sequence numbers, in
	// sequence order; numbers that name no event are left out.
	EventsByID(ctx context.Context, seqs []int64) ([]Event, error)
	// BranchCounts counts the branches taken and the dialogs started since since,
	// by flow version.
	BranchCounts(ctx context.Context, since time.Time) ([]BranchCount, error)
}

var _ ConsoleReader = (*GormStore)(nil)

// Overview is the state of the store at a glance.
type Overview struct {
	// Dialogs counts the dialogs by status.
	Dialogs map[dialog.Status]int64
	// InboxPending counts the events waiting to be processed; OldestPending is when
	// the oldest of them was received (zero when none waits).
	InboxPending  int64
	OldestPending time.Time
	// Outbox counts the outbound actions by status (done ones are not counted).
	Outbox map[OutboxStatus]int64
	// TimersSoon counts the pending timers due within the next hour (or overdue).
	TimersSoon int64
	// Errors are the most recent failures, newest first: failed events, failed and
	// dead actions and runtime errors of dialogs.
	Errors []RecentError
}

// RecentError is one recent failure.
type RecentError struct {
	At time.Time
	// What is "event", "action" or "dialog"; ID is the event's, action's or
	// dialog's id; DialogID is the dialog concerned, when known.
	What     string
	ID       int64
	DialogID *int64
	Text     string
}

// recentErrors is how many failures of each kind the overview lists.
const recentErrors = 10

// historyErrorWindow is how many of the newest history lines the overview searches
// for runtime errors: the history has no index by kind, and this bounds the scan.
const historyErrorWindow = 20000

// Overview counts what an operator watches.
func (s *GormStore) Overview(ctx context.Context, now time.Time) (*Overview, error) {
	db := s.read(ctx)
	o := &Overview{Dialogs: map[dialog.Status]int64{}, Outbox: map[OutboxStatus]int64{}}
	var byStatus []struct {
		Status string `gorm:"column:status"`
		N      int64  `gorm:"column:n"`
	}
	if err := db.Raw(`SELECT status, COUNT(*) AS n FROM dialogs GROUP BY status`).Scan(&byStatus).Error; err != nil {
		return nil, fmt.Errorf("count dialogs by status: %w", err)
	}
	for _, r := range byStatus {
		o.Dialogs[dialog.Status(r.Status)] = r.N
	}
	if err := db.Raw(`SELECT COUNT(*) FROM events WHERE status = 'pending'`).Scan(&o.InboxPending).Error; err != nil {
		return nil, fmt.Errorf("count the inbox backlog: %w", err)
	}
	var oldest []struct {
		At time.Time `gorm:"column:received_at"`
	}
	if err := db.Raw(`SELECT received_at FROM events WHERE status = 'pending' ORDER BY id LIMIT 1`).
		Scan(&oldest).Error; err != nil {
		return nil, fmt.Errorf("read the oldest waiting event: %w", err)
	}
	if len(oldest) == 1 {
		o.OldestPending = oldest[0].At.UTC()
	}
	byStatus = nil
	if err := db.Raw(`SELECT status, COUNT(*) AS n FROM outbox WHERE status <> 'done' GROUP BY status`).
		Scan(&byStatus).Error; err != nil {
		return nil, fmt.Errorf("count the outbox by status: %w", err)
	}
	for _, r := range byStatus {
		o.Outbox[OutboxStatus(r.Status)] = r.N
	}
	if err := db.Raw(`SELECT COUNT(*) FROM timers WHERE status = 'pending' AND due_at <= ?`,
		dbTime(now.Add(time.Hour))).Scan(&o.TimersSoon).Error; err != nil {
		return nil, fmt.Errorf("count the timers due soon: %w", err)
	}
	errs, err := s.recentErrors(ctx)
	if err != nil {
		return nil, err
	}
	o.Errors = errs
	return o, nil
}

// recentErrors lists the newest failures of each kind, newest first.
func (s *GormStore) recentErrors(ctx context.Context) ([]RecentError, error) {
	db := s.read(ctx)
	var out []RecentError
	var events []struct {
		ID       int64     `gorm:"column:id"`
		At       time.Time `gorm:"column:received_at"`
		DialogID *int64    `gorm:"column:dialog_id"`
		Error    string    `gorm:"column:error"`
		Type     string    `gorm:"column:type"`
	}
	if err := db.Raw(`SELECT id, received_at, dialog_id, error, type FROM events WHERE status = 'failed'
		ORDER BY id DESC LIMIT ?`, recentErrors).Scan(&events).Error; err != nil {
		return nil, fmt.Errorf("read failed events: %w", err)
	}
	for _, e := range events {
		out = append(out, RecentError{At: e.At.UTC(), What: "event", ID: e.ID, DialogID: e.DialogID, Text: e.Type + ": " + e.Error})
	}
	var actions []struct {
		ID        int64     `gorm:"column:id"`
		At        time.Time `gorm:"column:updated_at"`
		DialogID  *int64    `gorm:"column:dialog_id"`
		Kind      string    `gorm:"column:kind"`
		Status    string    `gorm:"column:status"`
		LastError string    `gorm:"column:last_error"`
	}
	if err := db.Raw(`SELECT id, updated_at, dialog_id, kind, status, last_error FROM outbox
		WHERE status IN ('failed', 'dead') ORDER BY id DESC LIMIT ?`, recentErrors).Scan(&actions).Error; err != nil {
		return nil, fmt.Errorf("read failed actions: %w", err)
	}
	for _, a := range actions {
		out = append(out, RecentError{At: a.At.UTC(), What: "action", ID: a.ID, DialogID: a.DialogID,
			Text: a.Kind + " " + a.Status + ": " + a.LastError})
	}
	var lines []struct {
		ID       int64     `gorm:"column:id"`
		At       time.Time `gorm:"column:at"`
		DialogID int64     `gorm:"column:dialog_id"`
		Detail   string    `gorm:"column:detail"`
	}
	if err := db.Raw(`SELECT id, at, dialog_id, detail FROM history
		WHERE id > (SELECT COALESCE(MAX(id), 0) FROM history) - ? AND kind = ?
		ORDER BY id DESC LIMIT ?`, historyErrorWindow, string(dialog.HistError), recentErrors).Scan(&lines).Error; err != nil {
		return nil, fmt.Errorf("read runtime errors: %w", err)
	}
	for _, l := range lines {
		var d struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal([]byte(l.Detail), &d) // the interpreter writes it; a bad one shows empty
		id := l.DialogID
		out = append(out, RecentError{At: l.At.UTC(), What: "dialog", ID: l.DialogID, DialogID: &id, Text: d.Error})
	}
	sortNewestFirst(out)
	return out, nil
}

func sortNewestFirst(errs []RecentError) {
	for i := 1; i < len(errs); i++ { // insertion sort: a few dozen lines
		for j := i; j > 0 && errs[j].At.After(errs[j-1].At); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// DialogSearch narrows SearchDialogs: the filter of the admin list, and parts of
// the customer's phone and name. Empty fields match everything.
type DialogSearch struct {
	DialogFilter
	// Phone matches dialogs whose phone or contact id contains these digits
	// (anything but digits is left out: "+7 916" finds 7916…).
	Phone string
	// Name matches dialogs whose variables hold this text (flows keep the
	// customer's name there), without regard to case on PostgreSQL and for
	// ASCII letters on SQLite.
	Name string
}

// SearchDialogs returns one page of dialogs matching s, newest first.
func (s *GormStore) SearchDialogs(ctx context.Context, q DialogSearch, p Page) ([]Dialog, string, error) {
	rows, next, err := s.dialogsMatching(ctx, q, p)
	if err != nil {
		return nil, "", fmt.Errorf("search dialogs: %w", err)
	}
	return rows, next, nil
}

// dialogsMatching reads one page of the dialogs matching q, newest first: the
// query of the admin list and of the console's search.
func (s *GormStore) dialogsMatching(ctx context.Context, q DialogSearch, p Page) ([]Dialog, string, error) {
	var w where
	w.addEq("flow", q.Flow)
	w.addEq("state", q.State)
	w.addEq("status", string(q.Status))
	if q.Key != "" {
		w.add("id IN (SELECT dialog_id FROM dialog_keys WHERE key = ?)", cleanText(q.Key))
	}
	if !q.Since.IsZero() {
		w.add("created_at >= ?", dbTime(q.Since))
	}
	if digits := onlyDigits(q.Phone); digits != "" {
		pat := "%" + digits + "%"
		w.add("(phone LIKE ? OR contact_id LIKE ?)", pat, pat)
	}
	if name := strings.TrimSpace(q.Name); name != "" {
		op := "LIKE"
		if s.dialect == dialectPostgres {
			op = "ILIKE"
		}
		w.add("vars "+op+" ? ESCAPE '\\'", "%"+likeEscape(cleanText(name))+"%")
	}
	tail, limit, err := pageQuery("dialogs", &w, p)
	if err != nil {
		return nil, "", err
	}
	var rows []dialogRow
	if err := s.read(ctx).Raw(`SELECT `+dialogColumns+` FROM dialogs`+w.String()+tail, w.args...).Scan(&rows).Error; err != nil {
		return nil, "", err
	}
	rows, next := nextCursor("dialogs", rows, limit, func(r *dialogRow) int64 { return r.ID })
	out := make([]Dialog, 0, len(rows))
	for i := range rows {
		d, err := rows[i].toDialog()
		if err != nil {
			return nil, "", err
		}
		out = append(out, d)
	}
	return out, next, nil
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// likeEscape escapes LIKE's wildcards and its escape character.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// maxEventsByID bounds one EventsByID query's list of numbers.
const maxEventsByID = 500

// EventsByID returns the events with the given sequence numbers, in sequence order.
func (s *GormStore) EventsByID(ctx context.Context, seqs []int64) ([]Event, error) {
	var out []Event
	for start := 0; start < len(seqs); start += maxEventsByID {
		part := seqs[start:min(start+maxEventsByID, len(seqs))]
		var rows []eventRow
		if err := s.read(ctx).Raw(`SELECT `+eventColumns+` FROM events WHERE id IN ? ORDER BY id`, part).
			Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("read events by id: %w", err)
		}
		evs, err := toEvents(rows)
		if err != nil {
			return nil, fmt.Errorf("read events by id: %w", err)
		}
		out = append(out, evs...)
	}
	return out, nil
}

// BranchCount is how often one branch of a flow version was taken (a guard that
// held, or a branch without one), at its place in the flow file; a Line of 0
// counts the dialogs the version started.
type BranchCount struct {
	Flow, Hash string
	Line, Col  int
	Count      int64
}

// BranchCounts counts the branches taken and the dialogs started since since, from
// the history's guard and event lines, by flow version and place.
//
// The history has no index by time; its ids grow with time, so the first line at
// or after since is found by a binary search over ids and only the lines after it
// are read.
func (s *GormStore) BranchCounts(ctx context.Context, since time.Time) ([]BranchCount, error) {
	from, err := s.firstHistoryAt(ctx, since)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Flow   string `gorm:"column:flow"`
		Hash   string `gorm:"column:flow_hash"`
		Kind   string `gorm:"column:kind"`
		Detail string `gorm:"column:detail"`
	}
	err = s.read(ctx).Raw(`SELECT d.flow, d.flow_hash, h.kind, h.detail FROM history h JOIN dialogs d ON d.id = h.dialog_id
		WHERE h.id >= ? AND h.at >= ? AND ((h.kind = ? AND h.detail LIKE '%"result":true%')
		   OR (h.kind = ? AND h.detail LIKE '%"start":true%'))`,
		from, dbTime(since), string(dialog.HistGuard), string(dialog.HistEvent)).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count branches taken: %w", err)
	}
	type place struct {
		flow, hash string
		line, col  int
	}
	counts := map[place]int64{}
	var order []place
	for _, r := range rows {
		p := place{flow: r.Flow, hash: r.Hash}
		if r.Kind == string(dialog.HistGuard) {
			var d struct {
				Line, Col int
				Result    bool
			}
			if json.Unmarshal([]byte(r.Detail), &d) != nil || !d.Result || d.Line <= 0 {
				continue
			}
			p.line, p.col = d.Line, d.Col
		}
		if _, ok := counts[p]; !ok {
			order = append(order, p)
		}
		counts[p]++
	}
	out := make([]BranchCount, len(order))
	for i, p := range order {
		out[i] = BranchCount{Flow: p.flow, Hash: p.hash, Line: p.line, Col: p.col, Count: counts[p]}
	}
	return out, nil
}

// firstHistoryAt returns the smallest history id whose line is at or after t (one
// past the newest when none is), searching ids in about 2·log2(lines) lookups by
// primary key.
func (s *GormStore) firstHistoryAt(ctx context.Context, t time.Time) (int64, error) {
	db := s.read(ctx)
	var bounds []struct {
		Lo *int64 `gorm:"column:lo"`
		Hi *int64 `gorm:"column:hi"`
	}
	if err := db.Raw(`SELECT MIN(id) AS lo, MAX(id) AS hi FROM history`).Scan(&bounds).Error; err != nil {
		return 0, fmt.Errorf("read history bounds: %w", err)
	}
	if len(bounds) == 0 || bounds[0].Lo == nil {
		return 0, nil
	}
	lo, hi := *bounds[0].Lo, *bounds[0].Hi+1 // the answer is in [lo, hi]
	at := dbTime(t)
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The first line at or after mid (ids may have gaps).
		var line []struct {
			ID int64     `gorm:"column:id"`
			At time.Time `gorm:"column:at"`
		}
		if err := db.Raw(`SELECT id, at FROM history WHERE id >= ? ORDER BY id LIMIT 1`, mid).Scan(&line).Error; err != nil {
			return 0, fmt.Errorf("search the history by time: %w", err)
		}
		switch {
		case len(line) == 0:
			hi = mid
		case line[0].At.Before(at):
			lo = line[0].ID + 1
		default:
			hi = mid
		}
	}
	return lo, nil
}
