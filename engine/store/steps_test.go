package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/engine/event"
)

// TestStepsIsolated: in one Steps transaction a failing step leaves no trace and
// gets its own error, while the steps around it commit.
func TestStepsIsolated(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		a := e.newDialog(t, "f", "a")
		b := e.newDialog(t, "f", "a")
		errBoom := errors.New("boom")
		move := func(d *Dialog, to string) func(StepTx) error {
			return func(tx StepTx) error {
				cur, err := tx.LockDialog(d.ID)
				if err != nil {
					return err
				}
				cur.State = to
				if err := tx.UpdateDialog(cur); err != nil {
					return err
				}
				return tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistTransition, FromState: "a", ToState: to})
			}
		}
		failing := func(tx StepTx) error {
			if err := move(b, "broken")(tx); err != nil {
				return err
			}
			return errBoom // after writing: its writes must be rolled back
		}
		errs := e.s.Steps(ctxT(t), []func(StepTx) error{move(a, "b"), failing, move(b, "c")})
		if errs[0] != nil || !errors.Is(errs[1], errBoom) || errs[2] != nil {
			t.Fatalf("errors: %v", errs)
		}
		for _, c := range []struct {
			d    *Dialog
			want string
			hist int64
		}{{a, "b", 1}, {b, "c", 1}} {
			got, err := e.s.GetDialog(ctxT(t), c.d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != c.want || got.Revision != 2 {
				t.Errorf("dialog %d: state %s revision %d, want %s revision 2", c.d.ID, got.State, got.Revision, c.want)
			}
			if n := e.count(t, "history", "dialog_id = ?", c.d.ID); n != c.hist {
				t.Errorf("dialog %d: %d history lines, want %d", c.d.ID, n, c.hist)
			}
		}
		if n := e.count(t, "history", "to_state = ?", "broken"); n != 0 {
			t.Errorf("the failed step's history was committed (%d lines)", n)
		}
	})
}

// TestStepsRunAgainAfterAFailure: the batch first runs without savepoints; when a
// step fails it is rolled back whole and run again, each step in a savepoint. The
// steps around the failure run twice and commit once; the one after it, once.
func TestStepsRunAgainAfterAFailure(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		calls := make([]int, 3)
		insert := func(i int, fail bool) func(StepTx) error {
			return func(tx StepTx) error {
				calls[i]++
				if err := tx.CreateDialog(&Dialog{Dialog: dialog.Dialog{Flow: fmt.Sprintf("step%d", i), State: "a"}}); err != nil {
					return err
				}
				if fail {
					return errors.New("boom")
				}
				return nil
			}
		}
		errs := e.s.Steps(ctxT(t), []func(StepTx) error{insert(0, false), insert(1, true), insert(2, false)})
		if errs[0] != nil || errs[1] == nil || errs[2] != nil {
			t.Fatalf("errors: %v", errs)
		}
		if calls[0] != 2 || calls[1] != 2 || calls[2] != 1 {
			t.Errorf("calls %v, want [2 2 1]", calls)
		}
		for i, want := range []int64{1, 0, 1} {
			if n := e.count(t, "dialogs", "flow = ?", fmt.Sprintf("step%d", i)); n != want {
				t.Errorf("step %d: %d dialogs stored, want %d", i, n, want)
			}
		}
		// Without a failure each step runs once.
		calls = make([]int, 3)
		errs = e.s.Steps(ctxT(t), []func(StepTx) error{insert(0, false), insert(2, false)})
		if errs[0] != nil || errs[1] != nil || calls[0] != 1 || calls[2] != 1 {
			t.Errorf("no failure: errors %v, calls %v", errs, calls)
		}
	})
}

// TestStepsOne: a batch of one is a plain Step, whose error rolls everything back.
func TestStepsOne(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		errBoom := errors.New("boom")
		errs := e.s.Steps(ctxT(t), []func(StepTx) error{func(tx StepTx) error {
			if err := tx.CreateDialog(&Dialog{Dialog: dialog.Dialog{Flow: "f", State: "a"}}); err != nil {
				return err
			}
			return errBoom
		}})
		if len(errs) != 1 || !errors.Is(errs[0], errBoom) {
			t.Fatalf("errors: %v", errs)
		}
		if n := e.count(t, "dialogs", ""); n != 0 {
			t.Errorf("%d dialogs after a failed step", n)
		}
	})
}

// TestStepAppendsAndSettles: a step stores events and settles an outbox item in the
// same transaction; a settle of an item no longer running rolls the events back.
func TestStepAppendsAndSettles(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		it := &OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{"text":"hi"}`)}
		e.step(t, func(tx StepTx) error { return tx.Enqueue(it) })
		if _, err := e.s.ClaimOutbox(ctxT(t), t0, 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		done := event.Event{Source: event.SourceAction, Type: event.TypeActionDone, At: t0, DedupeKey: "action:1:done",
			Data: map[string]any{"dialog_id": fmt.Sprint(d.ID)}}
		var res []AppendResult
		e.step(t, func(tx StepTx) error {
			var err error
			if res, err = tx.AppendEvents([]event.Event{done, done}); err != nil {
				return err
			}
			return tx.CompleteOutbox(it.ID, it.Attempts, json.RawMessage(`{"message_id":"wamid.1"}`))
		})
		if len(res) != 2 || res[0].Duplicate || !res[1].Duplicate || res[0].Seq != res[1].Seq {
			t.Fatalf("append results: %+v", res)
		}
		items, _, err := e.s.ListOutbox(ctxT(t), OutboxFilter{DialogID: d.ID}, Page{})
		if err != nil || len(items) != 1 || items[0].Status != OutboxDone || string(items[0].Result) != `{"message_id":"wamid.1"}` {
			t.Fatalf("outbox after settle: %+v %v", items, err)
		}

		// The item is done: settling it again fails and takes its event with it.
		again := done
		again.DedupeKey = "action:1:again"
		err = e.s.Step(ctxT(t), func(tx StepTx) error {
			if _, err := tx.AppendEvents([]event.Event{again}); err != nil {
				return err
			}
			return tx.FailOutbox(it.ID, it.Attempts, OutboxDead, "network", "late")
		})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("settle of a done item: %v, want ErrConflict", err)
		}
		if n := e.count(t, "events", "dedupe_key = ?", "action:1:again"); n != 0 {
			t.Errorf("the rolled back step's event was stored")
		}
	})
}

// TestChangedColumns: UpdateDialog sets only the columns that differ from the ones
// read (or last written); all of them for a dialog it knows nothing of.
func TestChangedColumns(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	base := storedColumns{flowHash: "h", state: "ask", status: "active", vars: `{"n":1}`, channel: "waba",
		contactID: "7916", phone: "7916", handoff: "[]", enteredAt: at}
	with := func(f func(c *storedColumns)) *storedColumns { c := base; f(&c); return &c }
	cases := []struct {
		name string
		cur  *storedColumns
		old  *storedColumns
		set  string
		args int
	}{
		{"unknown: every column", &base, nil,
			"flow_hash state status vars channel contact_id phone handoff_until entered_at", 9},
		{"unknown, empty values: every column", &storedColumns{}, nil,
			"flow_hash state status vars channel contact_id phone handoff_until entered_at", 9},
		{"nothing changed", &base, with(func(*storedColumns) {}), "", 0},
		{"state and vars", with(func(c *storedColumns) { c.state, c.vars = "done", `{"n":2}` }), &base, "state vars", 2},
		{"status", with(func(c *storedColumns) { c.status = "finished" }), &base, "status", 1},
		{"entered now, unknown before", &base, with(func(c *storedColumns) { c.enteredAt = nil }), "entered_at", 1},
		{"same instant, other zone", with(func(c *storedColumns) { c.enteredAt = at.In(time.FixedZone("MSK", 3*3600)) }), &base, "", 0},
		{"handoff", with(func(c *storedColumns) { c.handoff = `["okdesk.new_comment"]` }), &base, "handoff_until", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cols, args := c.cur.changedSince(c.old)
			if set := strings.Join(cols, " "); set != c.set || len(args) != c.args {
				t.Errorf("set %q with %d args, want %q with %d", set, len(args), c.set, c.args)
			}
		})
	}
}

// TestUpdateDialogWritesWhatChanged: a dialog read, changed in part and written
// reads back whole; so does one built without a read.
func TestUpdateDialogWritesWhatChanged(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		got, err := e.s.GetDialog(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.State, got.Vars = "b", map[string]any{"name": "Анна"}
		got.EnteredAt = t0
		if err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.UpdateDialog(got) }); err != nil {
			t.Fatal(err)
		}
		// Nothing changed: the revision still moves on.
		if err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.UpdateDialog(got) }); err != nil {
			t.Fatal(err)
		}
		blind := Dialog{Dialog: dialog.Dialog{ID: d.ID, Flow: "f", State: "c", Status: dialog.Handoff, Vars: map[string]any{}, Channel: "waba", ContactID: "1", HandoffUntil: []string{"waba.message"}}, Revision: got.Revision}
		if err := e.s.Step(ctxT(t), func(tx StepTx) error { return tx.UpdateDialog(&blind) }); err != nil {
			t.Fatal(err)
		}
		back, err := e.s.GetDialog(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if back.State != "c" || back.Status != dialog.Handoff || len(back.Vars) != 0 || back.Revision != d.Revision+3 ||
			back.ContactID != "1" || len(back.HandoffUntil) != 1 || !back.EnteredAt.IsZero() {
			t.Errorf("read back %+v", back)
		}
	})
}

// TestClaimOutboxOrder: a claim takes the due items earliest first (next_at, then
// id), up to its limit, and leaves the rest and the not yet due ones.
func TestClaimOutboxOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		offsets := []time.Duration{3 * time.Second, time.Second, 2 * time.Second, time.Second, time.Hour}
		items := make([]*OutboxItem, len(offsets))
		e.step(t, func(tx StepTx) error {
			for i, off := range offsets {
				items[i] = &OutboxItem{Kind: "send", Params: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), NextAt: t0.Add(off)}
				if err := tx.Enqueue(items[i]); err != nil {
					return err
				}
			}
			return nil
		})
		claim := func(limit int) []int64 {
			t.Helper()
			got, err := e.s.ClaimOutbox(ctxT(t), t0.Add(time.Minute), limit, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, it := range got {
				if it.Status != OutboxRunning || it.Attempts != 1 {
					t.Errorf("claimed %+v", it)
				}
				ids = append(ids, it.ID)
			}
			return ids
		}
		if got, want := claim(3), []int64{items[1].ID, items[3].ID, items[2].ID}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("first claim %v, want %v", got, want)
		}
		if got, want := claim(10), []int64{items[0].ID}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("second claim %v, want %v (the last is not due)", got, want)
		}
	})
}

// TestDeferredWritesFindRowsByID: the kept updates look each JSON row's target up
// by id (a kept cancel of timers: its dialog's pending timers by timers_dialog),
// never scan the JSON rows for each row of a status (which is quadratic in a
// backlog), nor a table.
func TestDeferredWritesFindRowsByID(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "plan.db"), &fakeClock{now: t0})
	w := newDeferredWrites()
	byID := "INTEGER PRIMARY KEY (rowid=?)"
	for _, tc := range []struct{ q, found string }{
		{w.marks.many, byID},
		{w.done.many, byID},
		{dialogUpdate([]string{"state", "vars"}).many, byID},
		{w.cancels.many, "USING INDEX timers_dialog (dialog_id=? AND status=?)"},
		{w.cancels.one, "USING INDEX timers_dialog (dialog_id=? AND status=?)"},
	} {
		var plan []struct {
			Detail string `gorm:"column:detail"`
		}
		args := []any{`[[1,"processed",null,"","",""]]`}
		if tc.q == w.cancels.one {
			args = []any{1, "a", 2, "pending"}
		}
		if err := s.db.Raw(`EXPLAIN QUERY PLAN `+tc.q, args...).Scan(&plan).Error; err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, p := range plan {
			lines = append(lines, p.Detail)
		}
		want := []string{"SCAN j", tc.found}
		if tc.q == w.cancels.one {
			want = want[1:]
		}
		ok := len(lines) == len(want)
		for i := 0; ok && i < len(want); i++ {
			ok = strings.Contains(lines[i], want[i])
		}
		if !ok {
			t.Errorf("plan of %s:\n%s\nwant %q", firstLine(tc.q), strings.Join(lines, "\n"), want)
		}
	}
}
