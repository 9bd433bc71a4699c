package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

// TestStepsWritesSeenInOrder: within one batch of steps each step sees what the
// steps before it wrote, also where SQLite keeps those writes until the batch ends:
// a dialog updated twice, a timer scheduled and then cancelled or fired, an item
// enqueued and then claimed, completed and then failed, an event marked twice.
func TestStepsWritesSeenInOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		seqs := append1(t, e, msg("w1", "1", "a", t0), msg("w2", "1", "b", t0))
		move := func(to string) func(StepTx) error {
			return func(tx StepTx) error {
				cur, err := tx.LockDialog(d.ID)
				if err != nil {
					return err
				}
				cur.State = to
				return tx.UpdateDialog(cur)
			}
		}
		var first, second, third Timer
		var item OutboxItem
		var claimed []OutboxItem
		var fired bool
		errs := e.s.Steps(ctxT(t), []func(StepTx) error{
			move("b"),
			move("c"),
			func(tx StepTx) error {
				first = Timer{DialogID: d.ID, State: "c", Name: "1h", DueAt: t0.Add(time.Hour)}
				second = Timer{DialogID: d.ID, State: "c", Name: "2h", DueAt: t0.Add(2 * time.Hour)}
				third = Timer{DialogID: d.ID, State: "x", Name: "3h", DueAt: t0.Add(3 * time.Hour)}
				item = OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{"text":"hi"}`)}
				return errors.Join(tx.ScheduleTimer(&first), tx.ScheduleTimer(&second), tx.ScheduleTimer(&third),
					tx.Enqueue(&item), tx.MarkEvent(seqs[0].Seq, EventProcessed, &d.ID, ""))
			},
			func(tx StepTx) error {
				var err error
				if fired, err = tx.FireTimer(first.ID); err != nil {
					return err
				}
				if err = tx.CancelTimers(d.ID, "c"); err != nil {
					return err
				}
				claimed, err = tx.ClaimOutbox(t0, 10, time.Minute)
				return err
			},
			func(tx StepTx) error { return tx.CompleteOutbox(item.ID, 0, json.RawMessage(`{"ok":true}`)) },
			func(tx StepTx) error { return tx.FailOutbox(item.ID, 0, OutboxDead, "late", "done already") },
			func(tx StepTx) error { return tx.MarkEvent(seqs[0].Seq, EventFailed, &d.ID, "twice") },
			func(tx StepTx) error { return tx.MarkEvent(seqs[1].Seq, EventUnrouted, nil, "") },
		})
		for i, want := range []error{nil, nil, nil, nil, nil, ErrConflict, ErrSettled, nil} {
			if (want == nil) != (errs[i] == nil) || (want != nil && !errors.Is(errs[i], want)) {
				t.Errorf("step %d: error %v, want %v", i+1, errs[i], want)
			}
		}
		got, err := e.s.GetDialog(ctxT(t), d.ID)
		if err != nil || got.State != "c" || got.Revision != 3 {
			t.Fatalf("dialog: %+v %v, want state c at revision 3", got, err)
		}
		if !fired {
			t.Error("FireTimer of a timer scheduled in the batch reported false")
		}
		timers, err := e.s.DialogTimers(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		status := map[int64]TimerStatus{}
		for _, tm := range timers {
			status[tm.ID] = tm.Status
		}
		if status[first.ID] != TimerFired || status[second.ID] != TimerCancelled || status[third.ID] != TimerPending || len(status) != 3 {
			t.Errorf("timers %+v, want %d fired, %d cancelled, %d pending", timers, first.ID, second.ID, third.ID)
		}
		if len(claimed) != 1 || claimed[0].ID != item.ID || item.ID == 0 {
			t.Errorf("claimed %+v, want item %d", claimed, item.ID)
		}
		items, _, err := e.s.ListOutbox(ctxT(t), OutboxFilter{DialogID: d.ID}, Page{})
		if err != nil || len(items) != 1 || items[0].Status != OutboxDone || string(items[0].Result) != `{"ok":true}` {
			t.Errorf("outbox %+v %v, want the item done", items, err)
		}
		for i, want := range []EventStatus{EventProcessed, EventUnrouted} {
			ev, err := e.s.GetEvent(ctxT(t), seqs[i].Seq)
			if err != nil || ev.Status != want || ev.Attempts != 1 {
				t.Errorf("event %d: %+v %v, want %s after one attempt", i+1, ev, err, want)
			}
		}
	})
}

// TestStepsKeptWriteFailsItsStep: a write that fails only when it is made (an
// event settled already, an item no longer running, a revision that moved on, a
// dialog that does not exist) fails its own step; the others in the batch commit.
func TestStepsKeptWriteFailsItsStep(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		seqs := append1(t, e, msg("k1", "1", "a", t0), msg("k2", "1", "b", t0), msg("k3", "1", "c", t0))
		e.step(t, func(tx StepTx) error { return tx.MarkEvent(seqs[0].Seq, EventProcessed, nil, "") })
		stale, err := e.s.GetDialog(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.step(t, func(tx StepTx) error { return tx.UpdateDialog(stale) }) // stale.Revision is now 2; the stored one too
		stale.Revision = 1
		good := func(i int) func(StepTx) error {
			return func(tx StepTx) error {
				return errors.Join(tx.MarkEvent(seqs[i].Seq, EventProcessed, &d.ID, ""),
					tx.AppendHistory(HistoryEntry{DialogID: d.ID, Kind: dialog.HistLog, ToState: fmt.Sprint("good", i)}))
			}
		}
		errs := e.s.Steps(ctxT(t), []func(StepTx) error{
			good(1),
			func(tx StepTx) error { return tx.MarkEvent(seqs[0].Seq, EventProcessed, nil, "") },
			func(tx StepTx) error { return tx.MarkEvent(seqs[2].Seq+100, EventProcessed, nil, "") },
			func(tx StepTx) error { cur := *stale; return tx.UpdateDialog(&cur) }, // a step starts afresh each time
			func(tx StepTx) error { return tx.CompleteOutbox(12345, 0, nil) },
			func(tx StepTx) error {
				return tx.AppendHistory(HistoryEntry{DialogID: d.ID + 1000, Kind: dialog.HistLog, ToState: "nobody"})
			},
			good(2),
		})
		for i, want := range []error{nil, ErrSettled, ErrNotFound, ErrConflict, ErrNotFound, errors.New("any"), nil} {
			if (want == nil) != (errs[i] == nil) || (want != nil && want.Error() != "any" && !errors.Is(errs[i], want)) {
				t.Errorf("step %d: error %v, want %v", i+1, errs[i], want)
			}
		}
		for i := 1; i <= 2; i++ {
			if n := e.count(t, "history", "to_state = ?", fmt.Sprint("good", i)); n != 1 {
				t.Errorf("good step %d: %d history lines, want 1", i, n)
			}
			if n := e.count(t, "events", "id = ? AND status = 'processed'", seqs[i].Seq); n != 1 {
				t.Errorf("good step %d: its event is not processed", i)
			}
		}
		if n := e.count(t, "history", "to_state = 'nobody'"); n != 0 {
			t.Errorf("a history line of a missing dialog was stored")
		}
	})
}

// TestCancelTimersAsIfAtOnce: a cancel of timers, kept until the batch ends on
// SQLite, changes what a cancel made at once would: the timers stored before it
// and those scheduled earlier in the batch, never one scheduled after it (a step
// that enters a state again cancels its timers and schedules new ones), and a
// timer fired after it was cancelled reports false. The same whether the steps
// run as one batch, run again one by one after one of them failed, or each alone.
func TestCancelTimersAsIfAtOnce(t *testing.T) {
	for _, mode := range []string{"batch", "batch with a failed step", "one by one"} {
		t.Run(mode, func(t *testing.T) {
			eachDB(t, func(t *testing.T, e *env) {
				d := e.newDialog(t, "f", "x")
				other := e.newDialog(t, "f", "x")
				timer := func(d *Dialog, state string) *Timer {
					return &Timer{DialogID: d.ID, State: state, Name: state, DueAt: t0.Add(time.Hour)}
				}
				x0, y0, z0, o0 := timer(d, "x"), timer(d, "y"), timer(d, "z"), timer(other, "x")
				e.step(t, func(tx StepTx) error {
					return errors.Join(tx.ScheduleTimer(x0), tx.ScheduleTimer(y0), tx.ScheduleTimer(z0), tx.ScheduleTimer(o0))
				})
				x1, x2, x3, z1, o1, lost := timer(d, "x"), timer(d, "x"), timer(d, "x"), timer(d, "z"), timer(other, "x"),
					timer(d, "x")
				var firedY, firedZ bool
				steps := []func(StepTx) error{
					func(tx StepTx) error { return errors.Join(tx.CancelTimers(d.ID, "x"), tx.ScheduleTimer(x1)) },
					func(tx StepTx) error {
						return errors.Join(tx.ScheduleTimer(x2), tx.CancelTimers(d.ID, "x"), tx.ScheduleTimer(x3))
					},
					func(tx StepTx) error {
						if err := tx.CancelTimers(d.ID, "y"); err != nil {
							return err
						}
						var err error
						firedY, err = tx.FireTimer(y0.ID)
						return err
					},
					func(tx StepTx) error {
						var err error
						if firedZ, err = tx.FireTimer(z0.ID); err != nil {
							return err
						}
						return errors.Join(tx.CancelTimers(d.ID, "z"), tx.ScheduleTimer(z1))
					},
					func(tx StepTx) error { return errors.Join(tx.CancelTimers(other.ID, ""), tx.ScheduleTimer(o1)) },
				}
				switch mode {
				case "batch":
					for i, err := range e.s.Steps(ctxT(t), steps) {
						if err != nil {
							t.Fatalf("step %d: %v", i+1, err)
						}
					}
				case "batch with a failed step":
					failing := func(tx StepTx) error {
						return errors.Join(tx.CancelTimers(d.ID, "x"), tx.ScheduleTimer(lost), errors.New("fails"))
					}
					errs := e.s.Steps(ctxT(t), slices.Insert(slices.Clone(steps), 2, failing))
					for i, err := range errs {
						if (err != nil) != (i == 2) {
							t.Fatalf("step %d: %v", i+1, err)
						}
					}
				default:
					for _, fn := range steps {
						e.step(t, fn)
					}
				}
				if firedY || !firedZ {
					t.Errorf("fired the cancelled timer: %v, the pending one: %v; want false, true", firedY, firedZ)
				}
				timers, err := e.s.DialogTimers(ctxT(t), d.ID)
				if err != nil {
					t.Fatal(err)
				}
				others, err := e.s.DialogTimers(ctxT(t), other.ID)
				if err != nil {
					t.Fatal(err)
				}
				got := map[int64]TimerStatus{}
				for _, tm := range append(timers, others...) {
					got[tm.ID] = tm.Status
				}
				want := map[int64]TimerStatus{x0.ID: TimerCancelled, x1.ID: TimerCancelled, x2.ID: TimerCancelled,
					x3.ID: TimerPending, y0.ID: TimerCancelled, z0.ID: TimerFired, z1.ID: TimerPending,
					o0.ID: TimerCancelled, o1.ID: TimerPending}
				if !maps.Equal(got, want) {
					t.Errorf("timers %v, want %v", got, want)
				}
			})
		})
	}
}

// TestKeptIDsAreStored: a new timer's and outbox item's id, known when it is
// scheduled or enqueued, is the id it is stored with, in a fresh database and after
// rows were rolled back.
func TestKeptIDsAreStored(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "a")
		var ids []int64
		add := func(tx StepTx) error {
			tm := Timer{DialogID: d.ID, State: "a", DueAt: t0.Add(time.Hour)}
			it := OutboxItem{DialogID: &d.ID, Kind: "send"}
			if err := errors.Join(tx.ScheduleTimer(&tm), tx.Enqueue(&it)); err != nil {
				return err
			}
			ids = append(ids, tm.ID, it.ID)
			return nil
		}
		e.step(t, add)
		_ = e.s.Step(ctxT(t), func(tx StepTx) error { _ = add(tx); return errors.New("roll back") })
		ids = ids[:2]
		e.step(t, func(tx StepTx) error { return errors.Join(add(tx), add(tx)) })
		timers, err := e.s.DialogTimers(ctxT(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		items, _, err := e.s.ListOutbox(ctxT(t), OutboxFilter{DialogID: d.ID}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		var stored []int64
		for i := range timers {
			stored = append(stored, timers[i].ID, items[len(items)-1-i].ID)
		}
		if !slices.Equal(stored, ids) {
			t.Errorf("stored ids (timer, item, ...) %v, handed out %v", stored, ids)
		}
	})
}

// FuzzAppendJSONString: any text a step stores comes back unchanged from the JSON
// rows that carry kept writes to SQLite.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "line\nbreak\ttab\rcr", "\x01\x1f\x7f",
		"Здравствуйте", "emoji 😀", "\u2028\u2029", `\u0000 as text`, "</script>&"} {
		f.Add(s)
	}
	s := openStore(f, filepath.Join(f.TempDir(), "fuzz.db"), &fakeClock{now: t0})
	f.Fuzz(func(t *testing.T, in string) {
		in = cleanText(in)
		doc := string(appendRow(nil, in))
		if !json.Valid([]byte(doc)) {
			t.Fatalf("%q: invalid JSON %s", in, doc)
		}
		var back string
		if err := s.db.Raw(`SELECT value->>0 FROM jsonb_each(?)`, "["+doc+"]").Scan(&back).Error; err != nil {
			t.Fatal(err)
		}
		if back != in || !utf8.ValidString(back) {
			t.Fatalf("%q came back as %q", in, back)
		}
	})
}

// TestKeptWritesEitherForm: kept writes give the same rows whether there are few of
// a kind (one plain statement per row) or many (one statement for all).
func TestKeptWritesEitherForm(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		for _, n := range []int{1, 2, 3, 4, 6} {
			ds := make([]*Dialog, n)
			items := make([]*OutboxItem, n)
			for i := range ds {
				ds[i] = e.newDialog(t, fmt.Sprint("either", n), "a")
				items[i] = &OutboxItem{DialogID: &ds[i].ID, Kind: "send"}
				e.step(t, func(tx StepTx) error { return tx.Enqueue(items[i]) })
			}
			if _, err := e.s.ClaimOutbox(ctxT(t), t0.Add(time.Hour), 100, time.Minute); err != nil {
				t.Fatal(err)
			}
			var evs []Event
			for i := range ds {
				res := append1(t, e, msg(fmt.Sprint("either", n, "-", i), "1", "x", t0))
				evs = append(evs, Event{Seq: res[0].Seq})
			}
			fns := make([]func(StepTx) error, n)
			timers := make([]Timer, n)
			for i := range fns {
				fns[i] = func(tx StepTx) error {
					cur, err := tx.LockDialog(ds[i].ID)
					if err != nil {
						return err
					}
					cur.State, cur.EnteredAt = "b", t0.Add(time.Duration(i)*time.Second)
					timers[i] = Timer{DialogID: cur.ID, State: "b", Name: "t", DueAt: t0.Add(time.Hour)}
					return errors.Join(tx.UpdateDialog(cur), tx.ScheduleTimer(&timers[i]),
						tx.Enqueue(&OutboxItem{DialogID: &cur.ID, Kind: "next", Params: json.RawMessage(`{"i":"\"é\n"}`)}),
						tx.AppendHistory(HistoryEntry{DialogID: cur.ID, Kind: dialog.HistTransition, FromState: "a", ToState: "b"}),
						tx.MarkEvent(evs[i].Seq, EventProcessed, &cur.ID, ""),
						tx.CompleteOutbox(items[i].ID, items[i].Attempts, json.RawMessage(`{"n":1}`)))
				}
			}
			for i, err := range e.s.Steps(ctxT(t), fns) {
				if err != nil {
					t.Fatalf("%d steps: step %d: %v", n, i+1, err)
				}
			}
			for i, d := range ds {
				got, err := e.s.GetDialog(ctxT(t), d.ID)
				if err != nil || got.State != "b" || got.Revision != 2 || !got.EnteredAt.Equal(t0.Add(time.Duration(i)*time.Second)) {
					t.Errorf("%d steps: dialog %d: %+v %v", n, i+1, got, err)
				}
				tms, err := e.s.DialogTimers(ctxT(t), d.ID)
				if err != nil || len(tms) != 1 || tms[0].ID != timers[i].ID || !tms[0].DueAt.Equal(t0.Add(time.Hour)) {
					t.Errorf("%d steps: dialog %d: timers %+v %v", n, i+1, tms, err)
				}
				out, _, err := e.s.ListOutbox(ctxT(t), OutboxFilter{DialogID: d.ID}, Page{})
				if err != nil || len(out) != 2 || out[0].Kind != "next" || string(out[0].Params) != `{"i":"\"é\n"}` ||
					out[1].Status != OutboxDone || string(out[1].Result) != `{"n":1}` {
					t.Errorf("%d steps: dialog %d: outbox %+v %v", n, i+1, out, err)
				}
				hist, err := e.s.DialogHistory(ctxT(t), d.ID)
				if err != nil || len(hist) != 1 || hist[0].ToState != "b" {
					t.Errorf("%d steps: dialog %d: history %+v %v", n, i+1, hist, err)
				}
				ev, err := e.s.GetEvent(ctxT(t), evs[i].Seq)
				if err != nil || ev.Status != EventProcessed || ev.DialogID == nil || *ev.DialogID != d.ID {
					t.Errorf("%d steps: event %d: %+v %v", n, i+1, ev, err)
				}
			}
		}
	})
}

// TestLostClaimFinishesNothing: an item claimed again after its lease ran out is
// finished only by the claim it runs under, whether its completions are kept and
// made one by one or all at once, and whether it is completed, retried or failed.
func TestLostClaimFinishesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		for _, n := range []int{1, 4} {
			items := make([]*OutboxItem, n)
			for i := range items {
				d := e.newDialog(t, fmt.Sprint("lost", n, "-", i), "a")
				items[i] = &OutboxItem{DialogID: &d.ID, Kind: "send"}
				e.step(t, func(tx StepTx) error { return tx.Enqueue(items[i]) })
			}
			first, err := e.s.ClaimOutbox(ctxT(t), t0.Add(time.Hour), 100, time.Minute)
			if err != nil || len(first) != n {
				t.Fatalf("first claim: %d %v", len(first), err)
			}
			second, err := e.s.ClaimOutbox(ctxT(t), t0.Add(2*time.Hour), 100, time.Minute)
			if err != nil || len(second) != n {
				t.Fatalf("second claim: %d %v", len(second), err)
			}
			finish := func(claimed []OutboxItem) []error {
				fns := make([]func(StepTx) error, n)
				for i := range fns {
					it := claimed[i]
					fns[i] = func(tx StepTx) error { return tx.CompleteOutbox(it.ID, it.Attempts, json.RawMessage(`{}`)) }
				}
				return e.s.Steps(ctxT(t), fns)
			}
			for i, err := range finish(first) {
				if !errors.Is(err, ErrConflict) {
					t.Errorf("%d items: the lost claim completed item %d: %v", n, i+1, err)
				}
			}
			if err := e.s.Step(ctxT(t), func(tx StepTx) error {
				return tx.RetryOutbox(first[0].ID, first[0].Attempts, t0, "x", "x")
			}); !errors.Is(err, ErrConflict) {
				t.Errorf("%d items: the lost claim retried: %v", n, err)
			}
			if err := e.s.Step(ctxT(t), func(tx StepTx) error {
				return tx.FailOutbox(first[0].ID, first[0].Attempts, OutboxDead, "x", "x")
			}); !errors.Is(err, ErrConflict) {
				t.Errorf("%d items: the lost claim failed it: %v", n, err)
			}
			for i, err := range finish(second) {
				if err != nil {
					t.Errorf("%d items: the claim it runs under: item %d: %v", n, i+1, err)
				}
			}
		}
	})
}
