package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/scenario"
	"github.com/fixit-exchange/fixit/engine/sim"
	"github.com/fixit-exchange/fixit/engine/store"
)

// recordConversations runs conversations through the real server (in this process,
// on a fake clock) and returns the flows folder and the database they were recorded
// in: dialog 1 walks simple_lead to the end, dialog 2 is reminded after a day of
// silence and then answers, dialog 3 waits for its problem, and dialog 4 has an
// operator: its issue fails to be created (the flow hands it to a person) and is
// retried; an operator writes and hands it back, then takes it over and closes it.
func recordConversations(t *testing.T) (flowsDir, db string, in *inproc) {
	t.Helper()
	flowsDir = t.TempDir()
	copyFile(t, "../../flows.d/simple_lead_flow.yaml", filepath.Join(flowsDir, "simple_lead_flow.yaml"))
	db = filepath.Join(t.TempDir(), "recorded.db")
	in = newInproc(t, flowsDir, db, sim.DefaultStart(), nil)
	b := sim.NewBuilder(in.clk.Now)
	anna := sim.WhatsAppContact{Phone: "+79161234567", Name: "Анна"}
	petr := sim.WhatsAppContact{Phone: "+79160000002", Name: "Пётр"}
	ivan := sim.WhatsAppContact{Phone: "+79160000003", Name: "Иван"}
	tick := func(d time.Duration) {
		in.clk.Set(in.clk.Now().Add(d))
		if _, err := in.app.proc.FireTimers(in.ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.quiet(); err != nil {
			t.Fatal(err)
		}
	}
	in.mocks.Once("okdesk.create_issue", sim.Mock{Result: map[string]any{"id": "1542"}})
	in.send(b.WhatsAppText(anna, "Здравствуйте"))
	tick(time.Minute)
	in.send(b.WhatsAppText(anna, "Анна Смирнова"))
	tick(time.Minute)
	in.send(b.WhatsAppText(anna, "Течёт кондиционер на кухне"))
	in.send(b.WhatsAppText(petr, "Добрый день"))
	tick(time.Hour)
	in.send(b.OkdeskStatus(sim.OkdeskIssue{ID: "1542"}, "completed", "opened"))
	in.send(b.OneCPayment(sim.Payment{Status: "paid", OkdeskIssueID: "1542", Phone: anna.Phone, Amount: 1500}))
	tick(23 * time.Hour) // Пётр's reminder fires
	in.send(b.WhatsAppText(petr, "Пётр"))
	in.send(b.WhatsAppText(ivan, "Здравствуйте"))
	in.send(b.WhatsAppText(ivan, "Иван"))

	maria := sim.WhatsAppContact{Phone: "+79160000004", Name: "Мария"}
	in.mocks.Once("okdesk.create_issue", sim.Mock{Fail: &sim.Failure{Code: "bad_request", Message: "contact is invalid", Status: 422}})
	in.send(b.WhatsAppText(maria, "Здравствуйте"))
	in.send(b.WhatsAppText(maria, "Мария"))
	in.send(b.WhatsAppText(maria, "Не работает стиральная машина"))
	failed, _, err := in.app.st.ListOutbox(in.ctx, store.OutboxFilter{Status: store.OutboxFailed}, store.Page{Limit: 10})
	failed = slices.DeleteFunc(failed, func(it store.OutboxItem) bool { return it.Kind != "okdesk.create_issue" })
	if err != nil || len(failed) != 1 {
		t.Fatalf("the failed issue: %v %d", err, len(failed))
	}
	tick(time.Minute)
	if _, err := in.app.proc.RetryAction(in.ctx, failed[0].ID, "anna"); err != nil {
		t.Fatal(err)
	}
	tick(time.Minute)
	maria4 := *failed[0].DialogID
	for _, c := range []event.Control{
		{Kind: event.ControlMessage, Text: "Мария, это Анна из сервиса, заявка оформлена"},
		{Kind: event.ControlHandback},
		{Kind: event.ControlTakeover, Reason: "Мария просила позвонить"},
		{Kind: event.ControlClose, Status: "finished", Reason: "Мария получила ответ по телефону"},
	} {
		c.DialogID, c.Operator = maria4, "anna"
		if _, err := in.app.proc.Control(in.ctx, c); err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		tick(time.Minute)
	}
	return flowsDir, db, in
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// editFlow rewrites the flow file of dir with old replaced by new.
func editFlow(t *testing.T, dir, old, new string) string {
	t.Helper()
	out := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, "simple_lead_flow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("the flow has no %q", old)
	}
	if err := os.WriteFile(filepath.Join(out, "simple_lead_flow.yaml"), bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

type replayJSON struct {
	Dialogs []struct {
		Dialog    int64                   `json:"dialog"`
		Result    string                  `json:"result"`
		Reason    string                  `json:"reason"`
		Step      int                     `json:"step"`
		Recorded  *struct{ Event string } `json:"recorded"`
		Candidate *struct {
			Event   string
			Actions []string
		} `json:"candidate"`
	} `json:"dialogs"`
	Summary map[string]int `json:"summary"`
}

func replayCLI(t *testing.T, args ...string) (int, replayJSON, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runReplay(append(args, "--format", "json"), &out, &errOut)
	var r replayJSON
	if code != 2 {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("replay output: %v\n%s\n%s", err, out.String(), errOut.String())
		}
	}
	return code, r, errOut.String()
}

// TestReplay records conversations through the server, then replays them: against
// the same flows every dialog is the same; a changed text diverges at the event
// that sent it; a removed state strands the dialog waiting in it; an export
// replays like the database.
func TestReplay(t *testing.T) {
	flows, db, _ := recordConversations(t)

	code, r, stderr := replayCLI(t, "--db", db, "--flows", flows)
	if code != 0 || r.Summary["same"] != 4 {
		t.Fatalf("the same flows: exit %d, %+v %s", code, r, stderr)
	}

	// The issue-created message changes: only the dialog that got it diverges, at
	// the step of Okdesk's answer (the 4th event: 3 messages, then action.done).
	changed := editFlow(t, flows, "создана. Мы напишем", "оформлена. Мы напишем")
	code, r, _ = replayCLI(t, "--db", db, "--flows", changed)
	// Dialog 4's issue-created message never went (it was in an operator's hands).
	if code != 1 || r.Summary["diverged"] != 1 || r.Summary["same"] != 3 {
		t.Fatalf("a changed text: exit %d, %+v", code, r)
	}
	d := r.Dialogs[0]
	if d.Dialog != 1 || d.Result != "diverged" || d.Candidate == nil || !strings.Contains(d.Candidate.Event, "okdesk.create_issue") ||
		!strings.Contains(strings.Join(d.Candidate.Actions, " "), "оформлена") {
		t.Errorf("diverged at %+v", d)
	}
	if code, _, _ := replayCLI(t, "--db", db, "--flows", changed, "--allow-diverged"); code != 0 {
		t.Errorf("--allow-diverged: exit %d", code)
	}

	// The state dialog 3 waits in is renamed without a migrate: stranded.
	renamed := editFlow(t, flows, "ask_problem", "ask_issue")
	code, r, _ = replayCLI(t, "--db", db, "--flows", renamed, "--dialog", "3")
	if code != 1 || len(r.Dialogs) != 1 || r.Dialogs[0].Result != "stranded" || !strings.Contains(r.Dialogs[0].Reason, `"ask_problem"`) {
		t.Fatalf("a removed state: exit %d, %+v", code, r)
	}

	// An export replays like the database.
	var export, errOut bytes.Buffer
	if code := runReplay([]string{"export", "--db", db}, &export, &errOut); code != 0 {
		t.Fatalf("export: %d %s", code, errOut.String())
	}
	if n := strings.Count(export.String(), "\n"); n != 4 {
		t.Errorf("the export has %d lines, want one per dialog", n)
	}
	file := filepath.Join(t.TempDir(), "dialogs.jsonl")
	if err := os.WriteFile(file, export.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, r, _ := replayCLI(t, "--from", file, "--flows", changed, "--flow", "simple_lead"); code != 1 || r.Summary["diverged"] != 1 {
		t.Errorf("from the export: exit %d, %+v", code, r)
	}
	if code, _, stderr := replayCLI(t, "--db", db, "--since", "yesterday"); code != 2 || !strings.Contains(stderr, "RFC 3339") {
		t.Errorf("a bad --since: %d %s", code, stderr)
	}
}

// TestReplayScenario: a recorded conversation becomes a scenario that `fixit test`
// runs and passes, with personal data masked (or kept).
func TestReplayScenario(t *testing.T) {
	flows, db, _ := recordConversations(t)
	fs, diags := sim.DefaultLoader().Load(flows)
	if fs == nil {
		t.Fatal(diags)
	}
	for _, c := range []struct {
		id   string
		keep bool
	}{{"1", true}, {"1", false}, {"4", true}, {"4", false}} {
		keep := c.keep
		args := []string{"scenario", "--db", db, c.id}
		if keep {
			args = append(args, "--keep-pii")
		}
		var out, errOut bytes.Buffer
		if code := runReplay(args, &out, &errOut); code != 0 {
			t.Fatalf("scenario: %d %s", code, errOut.String())
		}
		src := out.String()
		if !keep && (strings.Contains(src, "9161234567") || strings.Contains(src, "Анна") || strings.Contains(src, "кондиционер") ||
			strings.Contains(src, "Мария")) {
			t.Errorf("the masked scenario shows personal data:\n%s", src)
		}
		if c.id == "4" && !strings.Contains(src, "takeover:") {
			t.Errorf("dialog 4's scenario has no takeover:\n%s", src)
		}
		sf, pd := scenario.ParseScenarios("dialog_"+c.id+"_test.yaml", []byte(src))
		if sf == nil {
			t.Fatalf("the scenario does not parse: %v\n%s", pd, src)
		}
		for _, sc := range sf.Scenarios {
			if f := scenario.RunScenario(fs, sc, nil); f != nil {
				var b bytes.Buffer
				f.Write(&b)
				t.Errorf("keep-pii=%v: the scenario fails:\n%s\n%s", keep, b.String(), src)
			}
		}
	}
}

// TestReplayArguments: every way of asking wrongly is refused up front with what
// is wrong (exit 2), before anything is read; a database that is not there is an
// error, not an empty replay; a selection of nothing fails the replay.
func TestReplayArguments(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "recorded.db")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--db", db, "export", "--keep-pii"}, 2, "fixit replay export does not take --keep-pii"},
		{[]string{"scenario", "--db", db, "--flow", "simple_lead", "1"}, 2, "fixit replay scenario does not take --flow"},
		{[]string{"--db", db, "--keep-pii"}, 2, "fixit replay does not take --keep-pii"},
		{[]string{"--db", db, "--format", "yaml"}, 2, `--format "yaml": want text or json`},
		{[]string{"--db", db, "--limit", "-3"}, 2, "--limit -3"},
		{[]string{"--db", db, "--status", "done"}, 2, `--status "done" is not one of`},
		{[]string{"scenario", "--db", db, "1,2"}, 2, `"1,2" is not a dialog id`},
		{[]string{"scenario", "--db", db}, 2, "scenario takes one dialog id"},
		{[]string{"--db", db, "extra"}, 2, `unexpected "extra"`},
		{[]string{"--db", filepath.Join(dir, "typo", "x.db")}, 1, "no such file"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		code := runReplay(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); !os.IsNotExist(err) {
		t.Errorf("replay made the folder of a database that is not there: %v", err)
	}

	// The subcommand may come after the flags; nothing selected fails a replay.
	_, recorded, _ := recordConversations(t)
	var out, errOut bytes.Buffer
	if code := runReplay([]string{"--db", recorded, "export", "--flow", "simple_lead"}, &out, &errOut); code != 0 ||
		strings.Count(out.String(), "\n") != 4 {
		t.Errorf("export after the flags: exit %d, %d lines %s", code, strings.Count(out.String(), "\n"), errOut.String())
	}
	errOut.Reset()
	if code := runReplay([]string{"--db", recorded, "--flow", "no_such_flow"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "no recorded dialog matches") {
		t.Errorf("an empty selection: exit %d %s", code, errOut.String())
	}
}
