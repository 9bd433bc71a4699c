package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Recording is one dialog as the store recorded it: the dialog, every event it
// processed, its actions with their outcomes, and its history. It is the line
// format of an export (JSON Lines, one dialog per line).
type Recording struct {
	Dialog  Dialog   `json:"dialog"`
	Events  []Event  `json:"events"`
	Actions []Action `json:"actions"`
	History []Line   `json:"history"`
}

// Dialog is a recorded dialog as it was at the end of the recording.
type Dialog struct {
	ID        int64          `json:"id"`
	Flow      string         `json:"flow"`
	FlowHash  string         `json:"flow_hash"`
	State     string         `json:"state"`
	Status    dialog.Status  `json:"status"`
	Vars      map[string]any `json:"vars"`
	Channel   string         `json:"channel"`
	ContactID string         `json:"contact_id"`
	Phone     string         `json:"phone"`
	CreatedAt time.Time      `json:"created_at"`
	// File is the flow file of the version the dialog ran ("" when unknown).
	File string `json:"file,omitempty"`
}

// Event is a recorded event of the dialog.
type Event struct {
	Seq        int64       `json:"seq"`
	ReceivedAt time.Time   `json:"received_at"`
	Status     string      `json:"status"`
	Event      event.Event `json:"event"`
}

// Action is a recorded outbound action and its outcome.
type Action struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Params    json.RawMessage `json:"params"`
	Status    string          `json:"status"`
	ErrorCode string          `json:"error_code,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
}

// Line is a recorded line of the dialog's history.
type Line struct {
	At       time.Time          `json:"at"`
	Kind     dialog.HistoryKind `json:"kind"`
	EventSeq int64              `json:"event_seq,omitempty"`
	From     string             `json:"from,omitempty"`
	To       string             `json:"to,omitempty"`
	Detail   map[string]any     `json:"detail,omitempty"`
}

// Selection chooses the recorded dialogs. Zero fields choose everything.
type Selection struct {
	Flow    string
	Since   time.Time
	Status  dialog.Status
	Dialogs []int64 // these dialogs only
	Limit   int     // at most this many, newest first (0: all)
}

// Load reads the chosen dialogs' recordings from a store, oldest first.
func Load(ctx context.Context, st store.Store, sel Selection) ([]Recording, error) {
	var rows []store.Dialog
	if len(sel.Dialogs) > 0 {
		for _, id := range sel.Dialogs {
			d, err := st.GetDialog(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("dialog %d: %w", id, err)
			}
			rows = append(rows, *d)
		}
	} else {
		cursor := ""
		for {
			page, next, err := st.ListDialogs(ctx, store.DialogFilter{Flow: sel.Flow, Status: sel.Status, Since: sel.Since},
				store.Page{Limit: store.MaxLimit, Cursor: cursor})
			if err != nil {
				return nil, err
			}
			rows = append(rows, page...)
			if next == "" || (sel.Limit > 0 && len(rows) >= sel.Limit) {
				break
			}
			cursor = next
		}
		if sel.Limit > 0 && len(rows) > sel.Limit {
			rows = rows[:sel.Limit]
		}
	}
	slices.SortFunc(rows, func(a, b store.Dialog) int { return int(a.ID - b.ID) })
	out := make([]Recording, 0, len(rows))
	for _, d := range rows {
		rec, err := recordSteady(ctx, st, d)
		if err != nil {
			return nil, fmt.Errorf("dialog %d: %w", d.ID, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// recordSteady reads a dialog's recording while a server may be processing it:
// a recording is kept only when the dialog did not change while it was read (its
// revision and last update are the same after), so its events, actions and
// history belong together.
func recordSteady(ctx context.Context, st store.Store, d store.Dialog) (Recording, error) {
	for range 5 {
		rec, err := record(ctx, st, d)
		if err != nil {
			return rec, err
		}
		after, err := st.GetDialog(ctx, d.ID)
		if err != nil {
			return rec, err
		}
		if after.Revision == d.Revision && after.UpdatedAt.Equal(d.UpdatedAt) {
			return rec, nil
		}
		d = *after // it moved on: read it again as it is now
	}
	return Recording{}, fmt.Errorf("the dialog kept changing while it was read (it is busy): try again")
}

func record(ctx context.Context, st store.Store, d store.Dialog) (Recording, error) {
	rec := Recording{Dialog: Dialog{ID: d.ID, Flow: d.Flow, FlowHash: d.FlowHash, State: d.State, Status: d.Status, Vars: d.Vars,
		Channel: d.Channel, ContactID: d.ContactID, Phone: d.Phone, CreatedAt: d.CreatedAt}}
	if v, err := st.GetFlowVersion(ctx, d.FlowHash); err == nil {
		rec.Dialog.File = v.File
	}
	for cursor := ""; ; {
		page, next, err := st.ListEvents(ctx, store.EventFilter{DialogID: d.ID}, store.Page{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return rec, err
		}
		for _, e := range page {
			ev := e.Event
			ev.ID = ""
			rec.Events = append(rec.Events, Event{Seq: e.Seq, ReceivedAt: e.ReceivedAt, Status: string(e.Status), Event: ev})
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortFunc(rec.Events, func(a, b Event) int { return int(a.Seq - b.Seq) })
	for cursor := ""; ; {
		page, next, err := st.ListOutbox(ctx, store.OutboxFilter{DialogID: d.ID}, store.Page{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return rec, err
		}
		for _, it := range page {
			rec.Actions = append(rec.Actions, Action{ID: it.ID, Kind: it.Kind, Params: it.Params, Status: string(it.Status),
				ErrorCode: it.ErrorCode, LastError: it.LastError, Result: it.Result})
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortFunc(rec.Actions, func(a, b Action) int { return int(a.ID - b.ID) })
	hist, err := st.DialogHistory(ctx, d.ID)
	if err != nil {
		return rec, err
	}
	for _, h := range hist {
		l := Line{At: h.At, Kind: h.Kind, From: h.FromState, To: h.ToState}
		if h.EventSeq != nil {
			l.EventSeq = *h.EventSeq
		}
		if len(h.Detail) > 0 {
			_ = json.Unmarshal(h.Detail, &l.Detail)
		}
		rec.History = append(rec.History, l)
	}
	return rec, nil
}

// Export writes recordings as JSON Lines, one dialog per line.
func Export(w io.Writer, recs []Recording) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// Import reads recordings written by Export. A bad line is an error naming it.
func Import(r io.Reader) ([]Recording, error) {
	var out []Recording
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var rec Recording
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("line %d: not a recorded dialog: %w", n, err)
		}
		if rec.Dialog.ID == 0 || rec.Dialog.Flow == "" {
			return nil, fmt.Errorf("line %d: the recording names no dialog (id and flow)", n)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
