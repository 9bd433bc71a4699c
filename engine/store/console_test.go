package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

func TestOverview(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		ctx := ctxT(t)
		empty, err := e.s.Overview(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if empty.InboxPending != 0 || !empty.OldestPending.IsZero() || len(empty.Errors) != 0 || empty.TimersSoon != 0 {
			t.Fatalf("empty store: %+v", empty)
		}
		res := append1(t, e, msg("k1", "79160000001", "a", t0), msg("k2", "79160000002", "b", t0))
		e.clock.Advance(time.Minute)
		append1(t, e, msg("k3", "79160000003", "c", t0))
		a := e.newDialog(t, "lead", "ask")
		b := e.newDialog(t, "lead", "ask")
		b.Status = dialog.Handoff
		e.step(t, func(tx StepTx) error {
			if err := tx.UpdateDialog(b); err != nil {
				return err
			}
			for _, due := range []time.Duration{30 * time.Minute, 2 * time.Hour} {
				if err := tx.ScheduleTimer(&Timer{DialogID: a.ID, State: "ask", Name: due.String(), DueAt: t0.Add(due)}); err != nil {
					return err
				}
			}
			for range 3 {
				if err := tx.Enqueue(&OutboxItem{DialogID: &a.ID, Kind: "send", Params: json.RawMessage(`{}`), NextAt: t0}); err != nil {
					return err
				}
			}
			if err := tx.MarkEvent(res[0].Seq, EventFailed, &a.ID, "boom in a guard"); err != nil {
				return err
			}
			return tx.AppendHistory(HistoryEntry{DialogID: b.ID, Kind: dialog.HistError, Detail: json.RawMessage(`{"error":"division by zero","state":"ask"}`)})
		})
		items, err := e.s.ClaimOutbox(ctx, t0, 2, time.Minute)
		if err != nil || len(items) != 2 {
			t.Fatalf("claim: %v, %d", err, len(items))
		}
		if err := e.s.FailOutbox(ctx, items[0].ID, OutboxDead, "http_503", "okdesk answered 503"); err != nil {
			t.Fatal(err)
		}
		o, err := e.s.Overview(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if o.Dialogs[dialog.Active] != 1 || o.Dialogs[dialog.Handoff] != 1 {
			t.Errorf("dialogs by status %v", o.Dialogs)
		}
		if o.InboxPending != 2 || !o.OldestPending.Equal(t0) {
			t.Errorf("inbox: %d pending, oldest %v (want 2, %v)", o.InboxPending, o.OldestPending, t0)
		}
		if o.Outbox[OutboxPending] != 1 || o.Outbox[OutboxRunning] != 1 || o.Outbox[OutboxDead] != 1 || o.Outbox[OutboxDone] != 0 {
			t.Errorf("outbox %v", o.Outbox)
		}
		if o.TimersSoon != 1 {
			t.Errorf("timers due within the hour: %d, want 1", o.TimersSoon)
		}
		kinds := map[string]string{}
		for _, r := range o.Errors {
			kinds[r.What] = r.Text
		}
		if kinds["event"] != "waba.message: boom in a guard" || kinds["action"] != "send dead: okdesk answered 503" ||
			kinds["dialog"] != "division by zero" || len(o.Errors) != 3 {
			t.Errorf("recent errors %+v", o.Errors)
		}
	})
}

func TestSearchDialogs(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		mk := func(flow, phone, name string) int64 {
			d := &Dialog{Dialog: dialog.Dialog{Flow: flow, State: "ask", Status: dialog.Active, Phone: phone, ContactID: phone,
				Vars: map[string]any{"name": name}}}
			e.step(t, func(tx StepTx) error { return tx.CreateDialog(d) })
			return d.ID
		}
		anna := mk("lead", "79161234567", "Anna Petrova")
		ivan := mk("lead", "79031112233", "Иван")
		other := mk("visit", "79160000000", "50%_off")
		e.step(t, func(tx StepTx) error { return tx.BindKey(ivan, "okdesk:issue:7") })
		tests := []struct {
			name string
			q    DialogSearch
			want []int64
		}{
			{"all", DialogSearch{}, []int64{other, ivan, anna}},
			{"phone with spaces and a plus", DialogSearch{Phone: "+7 916 123"}, []int64{anna}},
			{"phone digits", DialogSearch{Phone: "7916"}, []int64{other, anna}},
			{"name, another case", DialogSearch{Name: "anna"}, []int64{anna}},
			{"name in Cyrillic", DialogSearch{Name: "Иван"}, []int64{ivan}},
			{"wildcards are literal", DialogSearch{Name: "50%_"}, []int64{other}},
			{"a percent alone matches no wildcard", DialogSearch{Name: "%"}, []int64{other}},
			{"key", DialogSearch{DialogFilter: DialogFilter{Key: "okdesk:issue:7"}}, []int64{ivan}},
			{"flow and phone", DialogSearch{DialogFilter: DialogFilter{Flow: "lead"}, Phone: "7916"}, []int64{anna}},
			{"no match", DialogSearch{Name: "nobody"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rows, next, err := e.s.SearchDialogs(ctxT(t), tt.q, Page{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if got := dialogIDs(rows); !equalIDs(got, tt.want) || next != "" {
					t.Errorf("got %v (next %q), want %v", got, next, tt.want)
				}
			})
		}
		first, next, err := e.s.SearchDialogs(ctxT(t), DialogSearch{Phone: "79"}, Page{Limit: 2})
		if err != nil || len(first) != 2 || next == "" {
			t.Fatalf("first page: %v %d %q", err, len(first), next)
		}
		rest, next, err := e.s.SearchDialogs(ctxT(t), DialogSearch{Phone: "79"}, Page{Limit: 2, Cursor: next})
		if err != nil || !equalIDs(dialogIDs(rest), []int64{anna}) || next != "" {
			t.Errorf("second page: %v %v %q", err, dialogIDs(rest), next)
		}
	})
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEventsByID(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		res := append1(t, e, msg("a", "1", "one", t0), msg("b", "2", "two", t0), msg("c", "3", "three", t0))
		got, err := e.s.EventsByID(ctxT(t), []int64{res[2].Seq, res[0].Seq, 999})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Text != "one" || got[1].Text != "three" {
			t.Errorf("events %+v", got)
		}
		if none, err := e.s.EventsByID(ctxT(t), nil); err != nil || len(none) != 0 {
			t.Errorf("no ids: %v %v", none, err)
		}
	})
}

func TestBranchCounts(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		a := e.newDialog(t, "lead", "ask")
		b := e.newDialog(t, "visit", "ask")
		guard := func(d *Dialog, line int, result bool) HistoryEntry {
			detail, _ := json.Marshal(map[string]any{"branch": 1, "line": line, "col": 11, "when": "x > 1", "result": result})
			return HistoryEntry{DialogID: d.ID, Kind: dialog.HistGuard, Detail: detail}
		}
		start := func(d *Dialog) HistoryEntry {
			return HistoryEntry{DialogID: d.ID, Kind: dialog.HistEvent, Detail: json.RawMessage(`{"event_id":"1","start":true,"type":"waba.message"}`)}
		}
		// two days ago: not counted
		e.step(t, func(tx StepTx) error { return tx.AppendHistory(start(a), guard(a, 10, true)) })
		e.clock.Advance(48 * time.Hour)
		since := e.clock.Now().Add(-time.Hour)
		for range 30 { // many lines, for the search by time to have work to do
			e.step(t, func(tx StepTx) error {
				return tx.AppendHistory(guard(a, 10, true), guard(a, 12, false), guard(a, 14, true), guard(b, 10, true))
			})
		}
		e.step(t, func(tx StepTx) error { return tx.AppendHistory(start(a), start(b), start(b)) })
		got, err := e.s.BranchCounts(ctxT(t), since)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[[3]any]int64{}
		for _, c := range got {
			counts[[3]any{c.Flow, c.Line, c.Col}] = c.Count
			if c.Hash != "h-"+c.Flow {
				t.Errorf("hash %q of %s", c.Hash, c.Flow)
			}
		}
		want := map[[3]any]int64{{"lead", 10, 11}: 30, {"lead", 14, 11}: 30, {"visit", 10, 11}: 30, {"lead", 0, 0}: 1, {"visit", 0, 0}: 2}
		if len(counts) != len(want) {
			t.Errorf("counts %v, want %v", counts, want)
		}
		for k, n := range want {
			if counts[k] != n {
				t.Errorf("%v: %d, want %d", k, counts[k], n)
			}
		}
		later, err := e.s.BranchCounts(ctxT(t), e.clock.Now().Add(time.Hour))
		if err != nil || len(later) != 0 {
			t.Errorf("nothing after now: %v %v", later, err)
		}
	})
}
