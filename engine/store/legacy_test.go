package store

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// writeLegacy rewrites the legacy fixture with the code under test. The fixture is a
// database file written by an earlier release of the store; rewriting it with a
// later one would make the test compare that release with itself (see
// testdata/legacy/README.md).
var writeLegacy = flag.Bool("write-legacy", false, "rewrite testdata/legacy with the code under test")

const legacyDir = "testdata/legacy"

// testWABANumber is the WhatsApp business number of the tests' WhatsApp keys and
// dialogs; the legacy fixture, keyed before there were several numbers, is
// converted with it (migration 5).
const testWABANumber = "498761234560011"

// legacyT0 is the fake clock's time while the fixture is filled; legacyReopen is
// the clock's time when it is opened again.
var (
	legacyT0     = time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	legacyReopen = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
)

// TestLegacyFile opens a database file written by an earlier release and checks
// that every table's rows read back as that release read them (times included),
// that the store goes on working on it, and that writing the same content afresh
// stores the same bytes (so the time layout and the schema are unchanged).
func TestLegacyFile(t *testing.T) {
	fixture := filepath.Join(legacyDir, "fixit.db")
	if *writeLegacy {
		if err := os.MkdirAll(legacyDir, 0o750); err != nil {
			t.Fatal(err)
		}
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(fixture + suffix)
		}
		clock := &fakeClock{now: legacyT0}
		s, err := Open(context.Background(), fixture, testLogger(t), WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		fillLegacy(t, s, clock)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(fixture + suffix); err == nil {
				t.Fatalf("%s%s left behind after Close", fixture, suffix)
			}
		}
	}

	// The fixture is opened from a copy: opening a file writes its WAL beside it.
	path := filepath.Join(t.TempDir(), "fixit.db")
	copyTestFile(t, fixture, path)
	clock := &fakeClock{now: legacyReopen}
	s := openStore(t, path, clock, WithWABANumber(testWABANumber))

	checkGolden(t, "rows.golden", rawRows(t, s))
	checkGolden(t, "reads.golden", legacyReads(t, s))
	checkGolden(t, "follow-up.golden", legacyFollowUp(t, s, clock))
	checkGolden(t, "rows-after.golden", rawRows(t, s))

	t.Run("written afresh", func(t *testing.T) {
		clock := &fakeClock{now: legacyT0}
		s := openStore(t, filepath.Join(t.TempDir(), "fixit.db"), clock)
		fillLegacy(t, s, clock)
		checkGolden(t, "rows.golden", rawRows(t, s))
	})
}

// checkGolden compares got with testdata/legacy/name, or writes it there with
// -write-legacy or -update. A migration changes what the fixture reads as (its
// schema, new columns' defaults): -update rewrites the golden files from the
// fixture as it is, and their diff must show only what the migration did.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(legacyDir, name)
	if *writeLegacy || *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			g, w := "(none)", "(none)"
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs from %s at line %d:\n got: %s\nwant: %s", name, path, i+1, g, w)
			}
		}
	}
}

// mustOK stops the test on an error.
func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyTestFile copies a file, failing the test on an error.
func copyTestFile(t *testing.T, from, to string) {
	t.Helper()
	if err := copyFile(from, to); err != nil {
		t.Fatal(err)
	}
}

// rawRows lists the schema and every row of every table as SQLite itself quotes the
// stored values (type and bytes: 'text', 12, NULL), in rowid order: what is in the
// file, whatever the driver makes of it.
func rawRows(t *testing.T, s *GormStore) string {
	t.Helper()
	var b strings.Builder
	var schema []struct {
		Type string `gorm:"column:type"`
		Name string `gorm:"column:name"`
		SQL  string `gorm:"column:sql"`
	}
	if err := s.db.Raw(`SELECT type, name, COALESCE(sql, '') AS sql FROM sqlite_master ORDER BY name`).
		Scan(&schema).Error; err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, o := range schema {
		fmt.Fprintf(&b, "%s %s: %s\n", o.Type, o.Name, o.SQL)
		if o.Type == "table" {
			tables = append(tables, o.Name)
		}
	}
	for _, table := range tables {
		var cols []struct {
			Name string `gorm:"column:name"`
		}
		if err := s.db.Raw(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		var quoted, names []string
		for _, c := range cols {
			// When a migration ran is when the file was opened: the fixture runs
			// later migrations when the test opens it, a fresh file at once.
			if table == "schema_migrations" && c.Name == "applied_at" {
				continue
			}
			names = append(names, c.Name)
			quoted = append(quoted, `quote("`+c.Name+`")`)
		}
		var rows []string
		if err := s.db.Raw(`SELECT ` + strings.Join(quoted, ` || '|' || `) + ` FROM "` + table + `" ORDER BY rowid`).
			Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n%s (%s): %d rows\n", table, strings.Join(names, "|"), len(rows))
		for _, r := range rows {
			b.WriteString(r + "\n")
		}
	}
	return b.String()
}

// fillLegacy writes the fixture's content through the Store: flow versions, events
// of every source and status, dialogs in every status, keys, history, timers and
// outbox items in every status, contacts. Times have microseconds, none, or a zone
// other than UTC.
func fillLegacy(t *testing.T, s *GormStore, clock *fakeClock) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) { t.Helper(); mustOK(t, err) }
	step := func(fn func(tx StepTx) error) {
		t.Helper()
		must(s.Step(ctx, fn))
	}
	msk := time.FixedZone("MSK", 3*3600)

	must(s.SaveFlowVersion(ctx, FlowVersion{Hash: "a1b2c3", Flow: "simple_lead", File: "flows.d/simple_lead_flow.yaml",
		Source: "flow: simple_lead\nstates:\n  ask_name:\n    enter:\n      - send: \"Здравствуйте! Как к вам обращаться?\"\n"}))
	clock.Advance(1500 * time.Millisecond)
	must(s.SaveFlowVersion(ctx, FlowVersion{Hash: "d4e5f6", Flow: "simple_lead", File: "flows.d/simple_lead_flow.yaml",
		Source: "flow: simple_lead # v2\n"}))
	clock.Advance(123456789 * time.Nanosecond)

	evs := []event.Event{
		msg("wamid.1", "79161234567", "Здравствуйте", time.Date(2026, 11, 29, 12, 29, 58, 0, msk)),
		msg("wamid.2", "79161234567", "Анна", legacyT0.Add(90*time.Second+654321987)),
		msg("wamid.1", "79161234567", "Здравствуйте", legacyT0), // a duplicate
		{Source: event.SourceTelegram, Type: event.TypeTelegramCallback, At: legacyT0.Add(time.Minute), DedupeKey: "tg:7",
			Keys: []string{event.TelegramKey("5")}, Contact: event.Contact{Channel: event.SourceTelegram, ID: "5", Name: "Anna"},
			Text: "confirm", Data: map[string]any{"callback_data": "visit:1542", "message_id": 12.0}},
		{Source: event.SourceOkdesk, Type: "okdesk.new_ticket_status", At: legacyT0.Add(2 * time.Minute), DedupeKey: "okdesk:1542:completed",
			Keys: []string{event.OkdeskIssueKey("1542")}, Data: map[string]any{"status": "completed"}},
		{Source: event.SourceOneC, Type: event.TypeOneCPayment, At: legacyT0.Add(3 * time.Minute), DedupeKey: "onec:7f3c:3",
			Keys: []string{event.OneCInvoiceKey("7f3c"), event.PhoneKey("+7 916 123-45-67")},
			Text: "bad \xff byte and NUL \x00", Data: map[string]any{"amount": 18500.5, "currency": "RUB"}},
		msg("wamid.3", "79035550000", "Течёт кондиционер", legacyT0.Add(4*time.Minute)),
		{Source: event.SourceWABA, Type: event.TypeWABAStatus, At: legacyT0.Add(5 * time.Minute), DedupeKey: "wamid.out.1:read",
			Keys: []string{event.WABAKey(testWABANumber, "79161234567")}, Data: map[string]any{"status": "read"}},
	}
	res, err := s.AppendEvents(ctx, evs)
	must(err)
	seq := func(i int) *int64 { return &res[i].Seq }
	clock.Advance(2 * time.Second)

	// Dialog 1: active, walked from ask_name to ask_problem.
	d1 := &Dialog{Dialog: dialog.Dialog{Flow: "simple_lead", FlowHash: "d4e5f6", State: "ask_name", Channel: "waba", ContactID: "79161234567",
		BusinessNumber: testWABANumber,
		Phone:          "79161234567", Vars: map[string]any{"name": "", "tries": 0.0}, EnteredAt: clock.Now()}, LastEventID: res[0].Seq}
	step(func(tx StepTx) error {
		if ok, err := tx.ClaimEvent(res[0].Seq); err != nil || !ok {
			return fmt.Errorf("claim: %v %v", ok, err)
		}
		if err := tx.CreateDialog(d1); err != nil {
			return err
		}
		for _, k := range evs[0].Keys {
			if err := tx.BindKey(d1.ID, k); err != nil {
				return err
			}
		}
		if err := tx.ScheduleTimer(&Timer{DialogID: d1.ID, State: "ask_name", Name: "48h", DueAt: clock.Now().Add(48 * time.Hour)}); err != nil {
			return err
		}
		if err := tx.Enqueue(&OutboxItem{DialogID: &d1.ID, Kind: "waba.send",
			Params: json.RawMessage(`{"text":"Здравствуйте! Как к вам обращаться?"}`)}); err != nil {
			return err
		}
		if err := tx.AppendHistory(
			HistoryEntry{DialogID: d1.ID, Kind: dialog.HistEvent, EventSeq: seq(0)},
			HistoryEntry{DialogID: d1.ID, Kind: dialog.HistTransition, ToState: "ask_name"},
			HistoryEntry{DialogID: d1.ID, Kind: dialog.HistAction, Detail: json.RawMessage(`{"send":"Здравствуйте!"}`)},
		); err != nil {
			return err
		}
		return tx.MarkEvent(res[0].Seq, EventProcessed, &d1.ID, "")
	})
	clock.Advance(250 * time.Millisecond)
	step(func(tx StepTx) error {
		cur, err := tx.LockDialog(d1.ID)
		if err != nil {
			return err
		}
		if err := tx.CancelTimers(cur.ID, cur.State); err != nil {
			return err
		}
		cur.State, cur.EnteredAt, cur.LastEventID = "ask_problem", clock.Now(), res[1].Seq
		cur.Vars = map[string]any{"name": "Анна", "tries": 1.0, "nested": map[string]any{"list": []any{1.0, "два", nil}}}
		if err := tx.UpdateDialog(cur); err != nil {
			return err
		}
		if err := tx.ScheduleTimer(&Timer{DialogID: cur.ID, State: "ask_problem", Name: "24h", DueAt: clock.Now().Add(24 * time.Hour)}); err != nil {
			return err
		}
		if err := tx.ScheduleTimer(&Timer{DialogID: cur.ID, State: "ask_problem", Name: "reminder",
			DueAt: time.Date(2026, 11, 30, 14, 0, 0, 1000, msk)}); err != nil {
			return err
		}
		if err := tx.AppendHistory(
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistEvent, EventSeq: seq(1)},
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistSet, Detail: json.RawMessage(`{"name":"Анна"}`)},
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistTransition, FromState: "ask_name", ToState: "ask_problem",
				At: time.Date(2026, 11, 29, 9, 30, 7, 5000, time.UTC)},
		); err != nil {
			return err
		}
		return tx.MarkEvent(res[1].Seq, EventProcessed, &cur.ID, "")
	})
	clock.Advance(time.Second)

	// Dialog 2: handed off to a person on Telegram, on the older flow version.
	d2 := &Dialog{Dialog: dialog.Dialog{Flow: "simple_lead", FlowHash: "a1b2c3", State: "operator", Status: dialog.Handoff, Channel: "telegram",
		ContactID: "5", HandoffUntil: []string{"telegram.message", "okdesk.new_comment"}}, LastEventID: res[3].Seq}
	step(func(tx StepTx) error {
		if err := tx.CreateDialog(d2); err != nil {
			return err
		}
		if err := tx.BindKey(d2.ID, event.TelegramKey("5")); err != nil {
			return err
		}
		if err := tx.AppendHistory(HistoryEntry{DialogID: d2.ID, Kind: dialog.HistHandoff, EventSeq: seq(3),
			Detail: json.RawMessage(`{"until":["telegram.message"]}`)}); err != nil {
			return err
		}
		return tx.MarkEvent(res[3].Seq, EventProcessed, &d2.ID, "")
	})
	clock.Advance(3 * time.Second)

	// Dialog 3: finished, its keys released and its timers cancelled.
	d3 := &Dialog{Dialog: dialog.Dialog{Flow: "visit", FlowHash: "ffff00", State: "wait", Channel: "waba", ContactID: "79035550000",
		BusinessNumber: testWABANumber,
		Vars:           map[string]any{}}}
	step(func(tx StepTx) error {
		if err := tx.CreateDialog(d3); err != nil {
			return err
		}
		for _, k := range []string{event.OkdeskIssueKey("1542"), event.WABAKey(testWABANumber, "79035550000")} {
			if err := tx.BindKey(d3.ID, k); err != nil {
				return err
			}
		}
		return tx.ScheduleTimer(&Timer{DialogID: d3.ID, State: "wait", Name: "1h", DueAt: clock.Now().Add(time.Hour)})
	})
	clock.Advance(time.Minute)
	step(func(tx StepTx) error {
		cur, err := tx.LockDialog(d3.ID)
		if err != nil {
			return err
		}
		cur.State, cur.Status, cur.LastEventID = "done", dialog.Finished, res[4].Seq
		if err := tx.UpdateDialog(cur); err != nil {
			return err
		}
		if err := tx.AppendHistory(
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistEvent, EventSeq: seq(4)},
			HistoryEntry{DialogID: cur.ID, Kind: dialog.HistTransition, FromState: "wait", ToState: "done"},
		); err != nil {
			return err
		}
		return tx.MarkEvent(res[4].Seq, EventProcessed, &cur.ID, "")
	})

	// Events that ended otherwise, and one still pending (res[6]).
	step(func(tx StepTx) error {
		if err := tx.MarkEvent(res[5].Seq, EventUnrouted, nil, ""); err != nil {
			return err
		}
		return tx.MarkEvent(res[7].Seq, EventFailed, &d1.ID, "evaluate guard: division by zero")
	})
	clock.Advance(10 * time.Millisecond)

	// A timer that fired.
	step(func(tx StepTx) error {
		tm := &Timer{DialogID: d2.ID, State: "operator", Name: "handoff", DueAt: clock.Now().Add(-time.Minute)}
		if err := tx.ScheduleTimer(tm); err != nil {
			return err
		}
		_, err := tx.FireTimer(tm.ID)
		return err
	})

	// Outbox items in every status: done (with a result), retried, failed, dead,
	// running (claimed, with a lease), pending later, and one of no dialog.
	kinds := []string{"waba.send", "okdesk.create_issue", "telegram.send", "onec.read", "httpcall", "waba.send"}
	var items []*OutboxItem
	step(func(tx StepTx) error {
		for i, k := range kinds {
			it := &OutboxItem{DialogID: &d1.ID, Kind: k, Params: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
			if i == 5 {
				it.DialogID, it.NextAt = nil, clock.Now().Add(6*time.Hour+500*time.Microsecond)
			}
			if err := tx.Enqueue(it); err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	})
	clock.Advance(time.Second)
	claimed, err := s.ClaimOutbox(ctx, clock.Now(), 10, 2*time.Minute)
	must(err)
	if len(claimed) != 6 { // the first item of dialog 1 and five of the six above
		t.Fatalf("claimed %d items, want 6", len(claimed))
	}
	clock.Advance(333 * time.Millisecond)
	must(s.CompleteOutbox(ctx, claimed[0].ID, json.RawMessage(`{"message_id":"wamid.out.1"}`)))
	must(s.CompleteOutbox(ctx, claimed[1].ID, json.RawMessage(`{"message_id":"wamid.out.2"}`)))
	must(s.RetryOutbox(ctx, claimed[2].ID, clock.Now().Add(30*time.Second), "http_503", "Service Unavailable"))
	must(s.FailOutbox(ctx, claimed[3].ID, OutboxFailed, "http_400", "bad chat_id"))
	must(s.FailOutbox(ctx, claimed[4].ID, OutboxDead, "timeout", "8 attempts"))
	// claimed[5] stays running.
	step(func(tx StepTx) error {
		if err := tx.AppendHistory(HistoryEntry{DialogID: d1.ID, Kind: dialog.HistError,
			Detail: json.RawMessage(`{"error":"bad chat_id","code":"http_400"}`)}); err != nil {
			return err
		}
		return tx.AppendHistory(HistoryEntry{DialogID: d1.ID, Kind: dialog.HistLog, Detail: json.RawMessage(`"строка"`)})
	})
}

// legacyReads reads the whole store back through its methods, as JSON.
func legacyReads(t *testing.T, s *GormStore) string {
	t.Helper()
	ctx := context.Background()
	must := func(err error) { t.Helper(); mustOK(t, err) }
	type dialogDump struct {
		Dialog  *Dialog
		Keys    []DialogKey
		History []HistoryEntry
		Timers  []Timer
	}
	var out struct {
		Dialogs      []dialogDump
		Events       []Event
		Pending      []Event
		Outbox       []OutboxItem
		FlowVersions []*FlowVersion
		LastInbound  map[string]time.Time
		Counts       []DialogCount
		Waiting      []WaitingCount
		DueTimers    map[string][]Timer
		FoundByKey   map[string]int64
	}
	ds, _, err := s.ListDialogs(ctx, DialogFilter{}, Page{Limit: MaxLimit})
	must(err)
	for i := len(ds) - 1; i >= 0; i-- {
		var dd dialogDump
		dd.Dialog, err = s.GetDialog(ctx, ds[i].ID)
		must(err)
		dd.Keys, err = s.DialogKeys(ctx, ds[i].ID)
		must(err)
		dd.History, err = s.DialogHistory(ctx, ds[i].ID)
		must(err)
		dd.Timers, err = s.DialogTimers(ctx, ds[i].ID)
		must(err)
		out.Dialogs = append(out.Dialogs, dd)
	}
	out.Events, _, err = s.ListEvents(ctx, EventFilter{}, Page{Limit: MaxLimit})
	must(err)
	out.Pending, err = s.PendingEvents(ctx, 0, 100)
	must(err)
	out.Outbox, _, err = s.ListOutbox(ctx, OutboxFilter{}, Page{Limit: MaxLimit})
	must(err)
	for _, h := range []string{"a1b2c3", "d4e5f6"} {
		v, err := s.GetFlowVersion(ctx, h)
		must(err)
		out.FlowVersions = append(out.FlowVersions, v)
	}
	out.LastInbound = map[string]time.Time{}
	for _, c := range []contactRef{{"waba", "79161234567"}, {"waba", "79035550000"}, {"telegram", "5"}, {"waba", "none"}} {
		out.LastInbound[c.channel+":"+c.id], err = s.LastInbound(ctx, c.channel, c.id)
		must(err)
	}
	out.Counts, err = s.Counts(ctx)
	must(err)
	out.Waiting, err = s.WaitingDialogs(ctx, "simple_lead", "d4e5f6")
	must(err)
	// Due times compare as stored text against the time asked for: before, at and
	// after the due times written above.
	out.DueTimers = map[string][]Timer{}
	for _, at := range []time.Time{
		legacyT0,
		time.Date(2026, 11, 30, 11, 0, 0, 1000, time.UTC),
		time.Date(2026, 11, 30, 11, 0, 0, 999, time.UTC),
		legacyT0.Add(48 * time.Hour),
	} {
		out.DueTimers[at.Format(time.RFC3339Nano)], err = s.DueTimers(ctx, at, 100)
		must(err)
	}
	out.FoundByKey = map[string]int64{}
	for _, k := range []string{event.WABAKey(testWABANumber, "79161234567"), event.TelegramKey("5"), event.OkdeskIssueKey("1542")} {
		d, err := s.FindDialogByKeys(ctx, []string{k})
		must(err)
		if d != nil {
			out.FoundByKey[k] = d.ID
		} else {
			out.FoundByKey[k] = 0
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	must(err)
	return string(b) + "\n"
}

// legacyFollowUp goes on working on the fixture: it claims the outbox items due,
// including the running one whose lease ran out, fires the timers due, moves a
// dialog on, binds a released key to a new dialog and appends a duplicate and a
// new event. It returns what each call answered.
func legacyFollowUp(t *testing.T, s *GormStore, clock *fakeClock) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	say := func(what string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %s\n", what, j)
	}
	claimed, err := s.ClaimOutbox(ctx, clock.Now(), 10, time.Minute)
	say("ClaimOutbox", claimed, err)
	due, err := s.DueTimers(ctx, clock.Now(), 10)
	say("DueTimers", due, err)
	for _, tm := range due {
		var fired bool
		err := s.Step(ctx, func(tx StepTx) error {
			var err error
			fired, err = tx.FireTimer(tm.ID)
			return err
		})
		say(fmt.Sprintf("FireTimer %d", tm.ID), fired, err)
	}
	clock.Advance(1500 * time.Microsecond)
	res, err := s.AppendEvents(ctx, []event.Event{
		msg("wamid.2", "79161234567", "Анна", legacyT0),
		msg("wamid.4", "79161234567", "Кондиционер течёт", clock.Now().Add(-time.Second)),
	})
	say("AppendEvents", res, err)
	var d *Dialog
	err = s.Step(ctx, func(tx StepTx) error {
		var err error
		if d, err = tx.LockDialog(1); err != nil {
			return err
		}
		d.State, d.EnteredAt, d.LastEventID = "create_issue", clock.Now(), res[1].Seq
		d.Vars["problem"] = "Кондиционер течёт"
		if err := tx.UpdateDialog(d); err != nil {
			return err
		}
		if err := tx.CancelTimers(d.ID, "ask_problem"); err != nil {
			return err
		}
		return tx.MarkEvent(res[1].Seq, EventProcessed, &d.ID, "")
	})
	say("UpdateDialog", d, err)
	var d4 *Dialog
	err = s.Step(ctx, func(tx StepTx) error {
		d4 = &Dialog{Dialog: dialog.Dialog{Flow: "visit", FlowHash: "ffff00", State: "wait", Vars: map[string]any{"issue": 1542.0}}}
		if err := tx.CreateDialog(d4); err != nil {
			return err
		}
		return tx.BindKey(d4.ID, event.OkdeskIssueKey("1542"))
	})
	say("CreateDialog and BindKey", d4, err)
	keys, err := s.DialogKeys(ctx, d4.ID)
	say("DialogKeys", keys, err)
	moved, err := s.AdoptDialogs(ctx, "simple_lead", "d4e5f6", map[string]string{"operator": "operator"})
	say("AdoptDialogs", moved, err)
	last, err := s.LastInbound(ctx, "waba", "79161234567")
	say("LastInbound", last, err)
	return b.String()
}
