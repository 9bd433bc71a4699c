package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/scenario"
	"github.com/fixit-exchange/fixit/engine/sim"
	"github.com/fixit-exchange/fixit/engine/store"
)

// The agreement test: every shipped scenario, and a generated set of random
// conversations over the shipped flows, runs twice — through `fixit test`'s world
// (the core, one event at a time, on a store in memory) and through the server's
// own pipeline (signed webhooks into the HTTP server, the inbox, the router, the
// lanes, the writer, the outbox workers and the timer scheduler, on a fake clock,
// with the same mocked connectors) — and the dialogs must come out the same: their
// states, statuses, variables, keys, histories, actions and timers. The scenarios'
// own expectations are checked on both.

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// inproc is the server's parts, wired by newApp, running in this process on a
// fake clock and the test world's connectors, behind an httptest server. It hears
// every step and settled action.
type inproc struct {
	t     *testing.T
	ctx   context.Context
	cfg   config
	app   *app
	hs    *httptest.Server
	clk   *fakeClock
	mocks *sim.Mocks
	conn  *sim.Connectors

	mu      sync.Mutex
	stepped []*core.Applied
	settled []core.Settlement
}

func (in *inproc) Stepped(a *core.Applied) {
	in.mu.Lock()
	in.stepped = append(in.stepped, a)
	in.mu.Unlock()
}

func (in *inproc) Settled(s core.Settlement) {
	in.mu.Lock()
	in.settled = append(in.settled, s)
	in.mu.Unlock()
}

func (in *inproc) Reloaded(engine.ReloadReport) {}

const agreeAdmin = "agreement-admin-token"

// newInproc starts the server's parts on flowsDir and the database dsn ("" for a
// fresh SQLite file), the fake clock at start; cfg, when given, adjusts the
// configuration.
func newInproc(t *testing.T, flowsDir, dsn string, start time.Time, env map[string]any, adjust ...func(*config)) *inproc {
	t.Helper()
	in := &inproc{t: t, ctx: context.Background(), clk: &fakeClock{t: start}, mocks: sim.NewMocks()}
	in.conn = sim.NewConnectors(in.mocks, true)
	if dsn == "" {
		dsn = filepath.Join(t.TempDir(), "fixit.db")
	}
	in.cfg = config{DB: dsn, Flows: flowsDir, AdminToken: agreeAdmin,
		AppSecret: appSecret, OkdeskUser: okdeskUser, OkdeskPass: okdeskPass, OneCToken: onecToken, TelegramSecret: "tg-secret"}
	for _, f := range adjust {
		f(&in.cfg)
	}
	if env == nil {
		env = map[string]any{}
	}
	a, err := newApp(in.ctx, in.cfg, slog.New(slog.DiscardHandler), appOptions{now: in.clk.Now, registry: in.conn.Registry(),
		observer: in, flowEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	in.app = a
	in.hs = httptest.NewServer(a.srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.proc.Run(ctx); close(done) }()
	t.Cleanup(func() {
		in.conn.ReleaseAll()
		cancel()
		<-done
		in.hs.Close()
		a.close()
	})
	return in
}

// deliver posts a notification to its webhook as its system does (signed), or a
// raw event to the admin API.
func (in *inproc) deliver(n sim.Delivery) error {
	var req *http.Request
	var err error
	if n.Webhook == "" {
		body, _ := json.Marshal(n.Event)
		req, err = http.NewRequest("POST", in.hs.URL+"/api/v1/events", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+agreeAdmin)
		}
	} else {
		req, err = http.NewRequest("POST", in.hs.URL+"/webhooks/"+n.Webhook, bytes.NewReader(n.Body))
	}
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	switch n.Webhook {
	case "waba":
		mac := hmac.New(sha256.New, []byte(appSecret))
		mac.Write(n.Body)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	case "telegram":
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", "tg-secret")
	case "okdesk":
		req.SetBasicAuth(okdeskUser, okdeskPass)
	case "onec":
		req.Header.Set("Authorization", "Bearer "+onecToken)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", req.URL.Path, resp.Status)
	}
	return nil
}

// quiet waits until no event is pending, every event's step and every recorded
// outcome has been heard, and no action is due or running but those held back.
func (in *inproc) quiet() error {
	deadline := time.Now().Add(30 * time.Second)
	calm := 0
	for time.Now().Before(deadline) {
		if in.isQuiet() {
			if calm++; calm == 3 {
				return nil
			}
		} else {
			calm = 0
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("the pipeline did not come to rest")
}

func (in *inproc) isQuiet() bool {
	evs, _, err := in.app.st.ListEvents(in.ctx, store.EventFilter{}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return false
	}
	items, _, err := in.app.st.ListOutbox(in.ctx, store.OutboxFilter{}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		return false
	}
	held, heldKinds := in.conn.Held()
	ended, running := 0, 0
	now := in.clk.Now()
	for _, it := range items {
		switch it.Status {
		case store.OutboxPending:
			if !it.NextAt.After(now) {
				return false
			}
		case store.OutboxRunning:
			running++
		default:
			ended += 1 + it.Requeues
		}
	}
	processed := 0
	for _, e := range evs {
		switch e.Status {
		case store.EventPending:
			// At rest only while it waits for files a held-back fetch is getting.
			wait, err := in.app.st.AwaitingFiles(in.ctx, e.Seq+1, e.Keys)
			if err != nil || !wait || !slices.Contains(heldKinds, event.KindFetch) {
				return false
			}
			continue
		}
		processed++
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return running == len(held) && len(in.stepped) >= processed && len(in.settled) >= ended
}

// serverDriver runs a scenario through the real server: a sim.Driver.
type serverDriver struct {
	*inproc
	b       *sim.Builder
	actions map[int64]*sim.Action // every action seen, by id
}

var _ sim.Driver = (*serverDriver)(nil)

// newServerDriver starts the server's pipeline on flowsDir, a fresh SQLite file and
// a fake clock at start.
func newServerDriver(t *testing.T, flowsDir string, start time.Time, env map[string]any) *serverDriver {
	t.Helper()
	in := newInproc(t, flowsDir, "", start, env)
	d := &serverDriver{inproc: in, b: sim.NewBuilder(in.clk.Now), actions: map[int64]*sim.Action{}}
	// Files come from the notifications this driver builds, into the server's file store.
	in.conn.UseFiles(in.app.files, d.b.Content)
	return d
}

func (d *serverDriver) Build() *sim.Builder { return d.b }
func (d *serverDriver) Mocks() *sim.Mocks   { return d.mocks }

func (d *serverDriver) Dialog(id int64) *store.Dialog {
	if id == 0 {
		return nil
	}
	row, err := d.app.st.LoadDialog(d.ctx, id)
	if err != nil {
		return nil
	}
	return row
}

func (d *serverDriver) DialogByKey(key string) *store.Dialog {
	row, err := d.app.st.FindDialogByKeys(d.ctx, []string{key})
	if err != nil || row == nil {
		return nil
	}
	return d.Dialog(row.ID)
}

// Deliver posts a notification and waits until everything it leads to is done.
func (d *serverDriver) Deliver(n sim.Delivery) *sim.Report {
	mark := d.mark()
	if err := d.deliver(n); err != nil {
		return &sim.Report{Err: err}
	}
	return d.settle(mark)
}

// Advance moves the clock as the world does: to each timer's due time in turn,
// firing it there.
func (d *serverDriver) Advance(dur time.Duration) *sim.Report {
	mark := d.mark()
	target := d.clk.Now().Add(dur)
	for {
		due, err := d.app.st.DueTimers(d.ctx, target, 1)
		if err != nil {
			return &sim.Report{Err: err}
		}
		if len(due) == 0 {
			break
		}
		if due[0].DueAt.After(d.clk.Now()) {
			d.clk.Set(due[0].DueAt)
		}
		if _, err := d.app.proc.FireTimers(d.ctx); err != nil {
			return &sim.Report{Err: err}
		}
		if err := d.quiet(); err != nil {
			return &sim.Report{Err: err}
		}
	}
	if target.After(d.clk.Now()) {
		d.clk.Set(target)
	}
	return d.settle(mark)
}

func (d *serverDriver) Complete(kind string, m sim.Mock) (*sim.Report, error) {
	mark := d.mark()
	id, ok := d.conn.Release(kind, m)
	if !ok {
		return nil, fmt.Errorf("complete %s: no %s action is pending", kind, kind)
	}
	rep := d.settle(mark)
	d.mu.Lock()
	a := d.actions[id]
	d.mu.Unlock()
	if len(rep.Events) > 0 {
		rep.Events[0].Completed = a
	}
	return rep, rep.Err
}

func (d *serverDriver) Control(c event.Control) (*sim.Report, error) {
	row := d.Dialog(c.DialogID)
	if row == nil {
		return nil, fmt.Errorf("%s: no dialog %d", c.Kind, c.DialogID)
	}
	if err := engine.ControlFits(c.Kind, row.Status); err != nil {
		return nil, err
	}
	mark := d.mark()
	if _, err := d.app.proc.Control(d.ctx, c); err != nil {
		return nil, err
	}
	rep := d.settle(mark)
	return rep, rep.Err
}

func (d *serverDriver) Retry(dialogID int64, kind string) (*sim.Report, error) {
	id, err := sim.LastFailed(d.ctx, d.app.st, dialogID, kind)
	if err != nil {
		return nil, err
	}
	mark := d.mark()
	if _, err := d.app.proc.RetryAction(d.ctx, id, "scenario"); err != nil {
		return nil, err
	}
	rep := d.settle(mark)
	return rep, rep.Err
}

type mark struct{ stepped, settled int }

func (d *serverDriver) mark() mark {
	d.mu.Lock()
	defer d.mu.Unlock()
	return mark{len(d.stepped), len(d.settled)}
}

// settle waits until the pipeline is quiet and reports what happened since m, in
// the order of the events (as the world processes them).
func (d *serverDriver) settle(m mark) *sim.Report {
	if err := d.quiet(); err != nil {
		return &sim.Report{Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rep := &sim.Report{}
	applied := slices.Clone(d.stepped[m.stepped:])
	sort.SliceStable(applied, func(i, j int) bool { return applied[i].Event.Seq < applied[j].Event.Seq })
	for _, a := range applied {
		p := sim.ProcessedOf(a)
		for _, it := range a.Actions {
			act := sim.NewAction(it)
			d.actions[it.ID] = act
			p.Actions = append(p.Actions, act)
		}
		rep.Events = append(rep.Events, p)
	}
	for _, s := range d.settled[m.settled:] {
		if act := d.actions[s.Item.ID]; act != nil {
			act.Settled(s, d.conn.Message(s.Item.ID))
		}
	}
	held, _ := d.conn.Held()
	for _, id := range held {
		if act := d.actions[id]; act != nil {
			act.Pending = true
		}
	}
	return rep
}

// snapshot writes down everything a store knows about its dialogs, in a form two
// runs can be compared in: ids of events and messages, and the store's own
// timestamps of rows, are left out.
func snapshot(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	ds, _, err := st.ListDialogs(ctx, store.DialogFilter{}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ds, func(a, b store.Dialog) int { return int(a.ID - b.ID) })
	var b strings.Builder
	for _, row := range ds {
		keys, err := st.DialogKeys(ctx, row.ID)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "dialog %d %s %s %s/%s vars=%s keys=%v handoff_until=%v entered=%s\n", row.ID, row.Flow, row.FlowHash[:8],
			row.State, row.Status, canon(row.Vars), store.ActiveKeys(keys), row.HandoffUntil, row.EnteredAt.UTC().Format(time.RFC3339))
		hist, err := st.DialogHistory(ctx, row.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hist {
			var detail map[string]any
			_ = json.Unmarshal(h.Detail, &detail)
			delete(detail, "event_id")
			fmt.Fprintf(&b, "  %s %s %s→%s %s\n", h.At.UTC().Format(time.RFC3339), h.Kind, h.FromState, h.ToState, canon(detail))
		}
		items, _, err := st.ListOutbox(ctx, store.OutboxFilter{DialogID: row.ID}, store.Page{Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(items, func(a, b store.OutboxItem) int { return int(a.ID - b.ID) })
		for _, it := range items {
			var params, result map[string]any
			_ = json.Unmarshal(it.Params, &params)
			_ = json.Unmarshal(it.Result, &result)
			delete(result, "message_id")
			fmt.Fprintf(&b, "  action %s %s %s attempts=%d code=%s result=%s\n", it.Kind, canon(params), it.Status, it.Attempts,
				it.ErrorCode, canon(result))
		}
		timers, err := st.DialogTimers(ctx, row.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range timers {
			fmt.Fprintf(&b, "  timer %s/%s %s %s\n", tm.State, tm.Name, tm.DueAt.UTC().Format(time.RFC3339), tm.Status)
		}
	}
	return b.String()
}

func canon(v any) string {
	b, _ := json.Marshal(fileless(v)) // maps are written with sorted keys
	return string(b)
}

// fileless replaces the ids of stored files (random in each file store) in v by
// "<file>", so two runs compare.
func fileless(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = fileless(e)
		}
		if _, isFile := x["sha256"]; isFile && x["id"] != nil {
			out["id"] = "<file>"
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fileless(e)
		}
		return out
	}
	return v
}

// agree runs sc on the world and on the server and compares what both did. It
// reports the scenario's failures on either side too. flows are the flow files
// and folders sc runs against (see scenario.FlowPaths).
func agree(t *testing.T, flows []string, sc *scenario.Scenario, checkExpectations bool) {
	t.Helper()
	fs, diags := sim.DefaultLoader().Load(flows...)
	if fs == nil {
		t.Fatalf("load %v: %v", flows, diags)
	}
	flowsDir := flowFolder(t, flows)
	w, err := sim.NewWorld(fs, sim.Options{Start: sc.Start, Env: sc.Env})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := newServerDriver(t, flowsDir, sc.Start, sc.Env)
	for _, side := range []struct {
		name string
		d    sim.Driver
	}{{"fixit test", w}, {"fixit serve", srv}} {
		if f := scenario.RunScenarioOn(side.d, sc); f != nil && checkExpectations {
			var out bytes.Buffer
			f.Write(&out)
			t.Errorf("through %s:\n%s", side.name, out.String())
		}
	}
	want, got := snapshot(t, w.Store()), snapshot(t, srv.app.st)
	if want != got {
		t.Errorf("fixit test and fixit serve disagree on %q:\n%s", sc.Name, diffLines(want, got))
	}
}

// flowFolder returns the one folder the server serves flows from: flows itself
// when it is one folder, else a temporary folder with a copy of every flow file
// they name (folders expanded as the loader expands them).
func flowFolder(t *testing.T, flows []string) string {
	t.Helper()
	if len(flows) == 1 {
		if st, err := os.Stat(flows[0]); err == nil && st.IsDir() {
			return flows[0]
		}
	}
	files, diags := engine.ReadPaths(flows...)
	if diags.HasErrors() {
		t.Fatalf("read %v: %v", flows, diags)
	}
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Name)), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// scenarioFlows are the flows a parsed scenario runs against.
func scenarioFlows(sc *scenario.Scenario) []string {
	return scenario.FlowPaths(&scenario.ScenarioFile{Name: sc.File, Flows: sc.Flows}, "")
}

// diffLines shows the lines that differ, marked - (fixit test) and + (fixit serve).
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "line %d\n  - %s\n  + %s\n", i+1, x, y)
		}
	}
	return out.String()
}

// shippedScenarios are the scenario files of the shipped flows, by folder.
func shippedScenarios(t *testing.T) map[string][]*scenario.Scenario {
	t.Helper()
	out := map[string][]*scenario.Scenario{}
	for _, dir := range []string{"../../flows.d", "../../examples"} {
		files, err := filepath.Glob(filepath.Join(dir, "*_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sf, diags := scenario.ParseScenarios(f, data)
			if sf == nil {
				t.Fatalf("%s: %v", f, diags)
			}
			out[dir] = append(out[dir], sf.Scenarios...)
		}
	}
	return out
}

func TestAgreementShippedScenarios(t *testing.T) {
	n := 0
	for dir, scs := range shippedScenarios(t) {
		for _, sc := range scs {
			n++
			t.Run(filepath.Base(dir)+"/"+sc.Name, func(t *testing.T) { agree(t, scenarioFlows(sc), sc, true) })
		}
	}
	if n < 27 {
		t.Fatalf("only %d shipped scenarios found", n)
	}
}

// TestAgreementRandomConversations: conversations made of random steps over the
// shipped flows (texts, taps, photos, Okdesk changes and comments, payments, time
// passing, failing actions) end the same on both.
func TestAgreementRandomConversations(t *testing.T) {
	rounds := 40
	if testing.Short() || raceEnabled {
		rounds = 8
	}
	rng := rand.New(rand.NewPCG(2026, 12))
	for i := range rounds {
		flows, src := randomConversation(rng, i)
		sf, diags := scenario.ParseScenarios(fmt.Sprintf("random_%d_test.yaml", i), []byte(src))
		if sf == nil {
			t.Fatalf("a generated conversation does not parse: %v\n%s", diags, src)
		}
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			agree(t, flows, sf.Scenarios[0], false)
			if t.Failed() {
				t.Logf("the conversation:\n%s", src)
			}
		})
	}
}

// randomConversation writes a scenario of random steps over one shipped flow (in
// every fourth, the customer's flow with the invoice flow alongside).
func randomConversation(rng *rand.Rand, i int) (flows []string, src string) {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var steps []string
	flows = []string{"../../flows.d"}
	if i%4 == 2 {
		flows = append(flows, "../../examples/okdesk_to_1c_invoice.yaml")
	}
	switch i % 4 {
	case 0, 1, 2: // simple_lead, the customer's flow
		for range 6 + rng.IntN(14) {
			switch rng.IntN(12) {
			case 0, 1, 2, 3:
				steps = append(steps, fmt.Sprintf("whatsapp: %q", pick("Здравствуйте", "Анна", "1", "2", "3", "Да",
					"Течёт кондиционер", "Когда придёт мастер?", "?", "Anna Smirnova", "не работает котёл, ошибка E5")))
			case 4:
				steps = append(steps, fmt.Sprintf("photo: %q", pick("", "Ошибка на табло")))
			case 5:
				steps = append(steps, fmt.Sprintf("button: { id: %q }", pick("yes", "no", "1", "2")))
			case 6:
				steps = append(steps, fmt.Sprintf("okdesk.status: { status: %s, issue: %q }", pick("in_progress", "completed", "closed", "opened"),
					pick("1001", "1002", "1542")))
			case 7:
				steps = append(steps, fmt.Sprintf("okdesk.comment: { text: %q, public: %v, issue: %q }", pick("Инженер будет завтра", "Ок"),
					rng.IntN(2) == 0, pick("1001", "1542")))
			case 8:
				steps = append(steps, fmt.Sprintf("onec.payment: { status: %s, okdesk_issue_id: %q }", pick("paid", "partially_paid", "unpaid"),
					pick("1001", "1542")))
			case 9:
				steps = append(steps, fmt.Sprintf("advance: %s", pick("5m", "1h", "25h", "49h", "3d")))
			case 10:
				steps = append(steps, fmt.Sprintf("mock: { okdesk.create_issue: { fail: { code: %s, status: %d } } }",
					pick("bad_request", "server_error"), 400+rng.IntN(2)*103))
			case 11:
				steps = append(steps, "mock: { okdesk.create_issue: { id: \"1542\" } }")
			}
		}
	default: // the Telegram example and the system-to-system invoice
		flows = []string{"../../examples"}
		for range 5 + rng.IntN(10) {
			switch rng.IntN(7) {
			case 0, 1:
				steps = append(steps, fmt.Sprintf("telegram: %q", pick("/visit 1542", "1542", "да", "а можно вечером?")))
			case 2, 3:
				steps = append(steps, fmt.Sprintf("callback: %q", pick("yes", "move", "cancel", "day2_am", "old")))
			case 4:
				steps = append(steps, fmt.Sprintf("okdesk.status: { status: %s, issue: %q }", pick("completed", "in_progress"), pick("1542", "1600")))
			case 5:
				steps = append(steps, fmt.Sprintf("advance: %s", pick("1h", "25h")))
			case 6:
				steps = append(steps, "mock: { http: { status: 200, body: { number: \"00БП-1\", amount: 100 } } }")
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "scenarios:\n  - name: random %d\n    steps:\n", i)
	for _, s := range steps {
		fmt.Fprintf(&b, "      - %s\n", s)
	}
	return flows, b.String()
}
