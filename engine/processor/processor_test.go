package processor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeConn records every action and answers from a script.
type fakeConn struct {
	mu      sync.Mutex
	calls   []connectors.Request
	answers map[string][]error        // kind → errors to return first, in order
	results map[string]map[string]any // kind → result data
}

func (f *fakeConn) Channel() string { return "waba" }
func (f *fakeConn) Kinds() []string {
	return []string{"okdesk.create_issue", "okdesk.comment", "okdesk.find_or_create_contact"}
}
func (f *fakeConn) Execute(_ context.Context, r connectors.Request) (connectors.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r)
	if errs := f.answers[r.Kind]; len(errs) > 0 {
		f.answers[r.Kind] = errs[1:]
		if errs[0] != nil {
			return connectors.Result{}, errs[0]
		}
	}
	return connectors.Result{Data: f.results[r.Kind]}, nil
}

func (f *fakeConn) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Kind == "send" {
			out = append(out, fmt.Sprint(c.Params["text"]))
		} else {
			out = append(out, c.Kind)
		}
	}
	return out
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

type harness struct {
	t     *testing.T
	dsn   string
	st    store.Store
	p     *Processor
	clk   *clock
	conn  *fakeConn
	flows *engine.Holder
	n     int
}

// freshDSN returns another empty database of the same kind as dsn.
func freshDSN(t *testing.T, dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return storetest.PostgresDSN(t)
	}
	return filepath.Join(t.TempDir(), "fixit.db")
}

// newHarness runs on a SQLite file; newHarnessOn on the database dsn names.
func newHarness(t *testing.T, flowsDir string) *harness {
	t.Helper()
	return newHarnessOn(t, flowsDir, filepath.Join(t.TempDir(), "fixit.db"))
}

func newHarnessOn(t *testing.T, flowsDir, dsn string) *harness {
	t.Helper()
	return newHarnessWith(t, flowsDir, dsn, nil)
}

// newHarnessWith is newHarnessOn with the processor's store wrapped by wrap (nil: as is).
func newHarnessWith(t *testing.T, flowsDir, dsn string, wrap func(store.Store) store.Store) *harness {
	t.Helper()
	return newHarnessConfig(t, flowsDir, dsn, wrap, true)
}

// newSharedHarness is newHarnessOn for a database another processor will share
// (runWithReplica): the processor is not exclusive.
func newSharedHarness(t *testing.T, flowsDir, dsn string) *harness {
	t.Helper()
	return newHarnessConfig(t, flowsDir, dsn, nil, false)
}

// newHarnessConfig is newHarnessWith with Config.Exclusive given.
func newHarnessConfig(t *testing.T, flowsDir, dsn string, wrap func(store.Store) store.Store, exclusive bool) *harness {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	opened, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler), store.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opened.Close() })
	var st store.Store = opened
	if wrap != nil {
		st = wrap(st)
	}
	h := engine.NewHolder(clk.Now, engine.MustLoader(registry.DryRun()), flowsDir)
	conn := &fakeConn{answers: map[string][]error{}, results: map[string]map[string]any{
		"okdesk.create_issue": {"id": "1542", "issue_id": "1542", "contact_id": "21"},
	}}
	reg := connectors.NewRegistry()
	if err := reg.Register(conn); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterSender(conn); err != nil {
		t.Fatal(err)
	}
	p := New(Config{Store: st, Flows: h, Registry: reg, Now: clk.Now, Jitter: func() float64 { return 0 },
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		BackoffBase: time.Second, MaxAttempts: 3, Exclusive: exclusive})
	t.Cleanup(p.Inbox().Close)
	if r := p.Reload(ctx, false); r.Result != engine.ReloadOK {
		t.Fatalf("flows: %+v", r)
	}
	return &harness{t: t, dsn: dsn, st: st, p: p, clk: clk, conn: conn, flows: h}
}

// newWrapped is a harness of the flows in flowsDir on a SQLite file whose store wrap wraps (fault
// injection, counting), and the wrapper.
func newWrapped[S store.Store](t *testing.T, flowsDir string, wrap func(store.Store) S) (*harness, S) {
	t.Helper()
	var w S
	h := newHarnessWith(t, flowsDir, filepath.Join(t.TempDir(), "fixit.db"), func(st store.Store) store.Store {
		w = wrap(st)
		return w
	})
	return h, w
}

// settle routes, processes and performs until nothing is left to do.
func (h *harness) settle() {
	h.t.Helper()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if err := h.p.RouteOnce(ctx); err != nil {
			h.t.Fatal(err)
		}
		h.p.Drain()
		n, err := h.p.RunOutbox(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		m, err := h.p.FireTimers(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		pending, err := h.st.PendingEvents(ctx, 0, 1)
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 && m == 0 && len(pending) == 0 {
			return
		}
	}
	h.t.Fatal("the pipeline did not settle")
}

func (h *harness) append(evs ...event.Event) []store.AppendResult {
	h.t.Helper()
	res, err := h.p.Inbox().Append(context.Background(), evs)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) wa(text string) event.Event {
	h.n++
	return event.Event{Source: "waba", Type: "waba.message", At: h.clk.Now(), Text: text,
		DedupeKey: fmt.Sprintf("waba:wamid.%d", h.n), Keys: []string{"waba:79161234567", "phone:79161234567"},
		Contact: event.Contact{Channel: "waba", ID: "79161234567", Phone: "79161234567", Name: "Анна"},
		Data:    map[string]any{"kind": "text"}}
}

// reloadAndAdopt reloads the flows, as SIGHUP does: the reload must succeed, its
// versions are saved and live dialogs move as the flows' migrate says.
func (h *harness) reloadAndAdopt() {
	h.t.Helper()
	if rep := h.p.Reload(context.Background(), false); rep.Result != engine.ReloadOK {
		h.t.Fatalf("reload: %+v", rep)
	}
}

// allProcessed fails the test unless every stored event was processed, none left
// pending or failed.
func (h *harness) allProcessed() {
	h.t.Helper()
	evs, _, err := h.st.ListEvents(context.Background(), store.EventFilter{}, store.Page{Limit: 100})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range evs {
		if e.Status != store.EventProcessed {
			h.t.Errorf("event %s %s: %s %s", e.ID, e.Type, e.Status, e.Error)
		}
	}
}

func (h *harness) dialog() *store.Dialog {
	h.t.Helper()
	ds, _, err := h.st.ListDialogs(context.Background(), store.DialogFilter{}, store.Page{Limit: 10})
	if err != nil || len(ds) == 0 {
		h.t.Fatalf("no dialog: %v", err)
	}
	return &ds[0]
}

func TestSimpleLeadEndToEnd(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newHarnessOn(t, "../../flows.d", dsn)
		h.append(h.wa("Здравствуйте"))
		h.settle()
		h.append(h.wa("Анна"))
		h.settle()
		h.append(h.wa("Течёт кондиционер"))
		h.settle()
		d := h.dialog()
		if d.State != "issue_open" || d.Vars["issue_id"] != "1542" {
			t.Fatalf("after the problem: state %s vars %v", d.State, d.Vars)
		}
		ctx := context.Background()
		// Okdesk closes the issue: routed by the okdesk:issue key the flow bound.
		h.append(event.Event{Source: "okdesk", Type: "okdesk.new_ticket_status", DedupeKey: "okdesk:s:1542:1",
			Keys: []string{"okdesk:issue:1542"}, Data: map[string]any{"new_status": "completed", "issue_id": "1542"}})
		h.settle()
		// 1C records the payment: routed by okdesk_issue_id.
		h.append(event.Event{Source: "onec", Type: "onec.payment", DedupeKey: "onec:p1",
			Keys: []string{"onec:invoice:x", "okdesk:issue:1542", "phone:79161234567"}, Data: map[string]any{"status": "paid"}})
		h.settle()
		want := []string{
			"Здравствуйте! Это сервисная служба. Как к вам обращаться?",
			"Анна, опишите, пожалуйста, проблему. Можно приложить фото с подписью.",
			"okdesk.create_issue",
			"Заявка №1542 создана. Мы напишем, когда инженер её выполнит.",
			"Заявка №1542 выполнена. Спасибо, что обратились к нам!",
			"Оплата по заявке №1542 получена. Спасибо!",
		}
		if got := h.conn.sent(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		d = h.dialog()
		if d.Status != dialog.Finished || d.State != "done" {
			t.Errorf("dialog %s/%s", d.State, d.Status)
		}
		// The issue was created with the customer's name, problem and phone.
		for _, c := range h.conn.calls {
			if c.Kind == "okdesk.create_issue" {
				if c.Params["title"] != "WhatsApp: Анна" || !strings.Contains(fmt.Sprint(c.Params["description"]), "Течёт кондиционер") ||
					c.Params["phone"] != "+79161234567" {
					t.Errorf("create_issue params %v", c.Params)
				}
			}
		}
		h.allProcessed()
		// The finished dialog released its keys: the next message starts a new dialog.
		h.append(h.wa("Снова здравствуйте"))
		h.settle()
		ds, _, _ := h.st.ListDialogs(ctx, store.DialogFilter{}, store.Page{Limit: 10})
		if len(ds) != 2 || ds[0].State != "ask_name" {
			t.Errorf("a new dialog must start after the first finished: %d dialogs", len(ds))
		}
	})
}

func TestDuplicatesProcessedOnce(t *testing.T) {
	h := newHarness(t, "../../flows.d")
	e := h.wa("Здравствуйте")
	r1 := h.append(e)
	r2 := h.append(e, e)
	if r1[0].Duplicate || !r2[0].Duplicate || !r2[1].Duplicate || r2[0].Seq != r1[0].Seq {
		t.Fatalf("dedupe: %+v %+v", r1, r2)
	}
	h.settle()
	if got := h.conn.sent(); len(got) != 1 {
		t.Errorf("one greeting expected, got %q", got)
	}
}

func TestTimersRemindThenAbandon(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newHarnessOn(t, "../../flows.d", dsn)
		h.append(h.wa("Здравствуйте"))
		h.settle()
		h.clk.Advance(25 * time.Hour)
		h.settle()
		if got := h.conn.sent(); len(got) != 2 || !strings.Contains(got[1], "Вы ещё здесь?") {
			t.Fatalf("reminder: %q", got)
		}
		if d := h.dialog(); d.State != "ask_name" || d.Status != dialog.Active {
			t.Errorf("a reminder keeps the dialog waiting: %s/%s", d.State, d.Status)
		}
		h.clk.Advance(24 * time.Hour)
		h.settle()
		if d := h.dialog(); d.State != "abandoned" || d.Status != dialog.Abandoned {
			t.Errorf("after 49h: %s/%s", d.State, d.Status)
		}
	})
}

func TestLeavingStateCancelsTimers(t *testing.T) {
	h := newHarness(t, "../../flows.d")
	h.append(h.wa("Здравствуйте"))
	h.settle()
	h.append(h.wa("Анна"))
	h.settle()
	h.clk.Advance(30 * time.Hour)
	h.settle()
	sent := h.conn.sent()
	// ask_name's 24h reminder must not fire; ask_problem's own 24h reminder does.
	for _, s := range sent {
		if strings.Contains(s, "как к вам обращаться?") && strings.HasPrefix(s, "Вы ещё") {
			t.Errorf("a timer of a state the dialog left fired: %q", s)
		}
	}
	if !strings.Contains(sent[len(sent)-1], "Напомните") {
		t.Errorf("ask_problem's reminder missing: %q", sent)
	}
}

func TestOutboxRetriesThenFails(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newHarnessOn(t, "../../flows.d", dsn)
		// Two network failures, then success: the issue is created on the third try.
		h.conn.answers["okdesk.create_issue"] = []error{
			&connectors.Error{Connector: "okdesk", Code: connectors.CodeServer, Status: 502, Retryable: true},
			&connectors.Error{Connector: "okdesk", Code: connectors.CodeRateLimited, Status: 429, Retryable: true, RetryAfter: 30 * time.Second},
		}
		h.append(h.wa("hi"), h.wa("Анна"), h.wa("Не греет котёл"))
		h.settle()
		ctx := context.Background()
		items, _, _ := h.st.ListOutbox(ctx, store.OutboxFilter{Status: store.OutboxPending}, store.Page{})
		if len(items) != 1 || items[0].Kind != "okdesk.create_issue" || items[0].Attempts != 1 || items[0].ErrorCode != connectors.CodeServer {
			t.Fatalf("after the first failure: %+v", items)
		}
		if due := items[0].NextAt.Sub(h.clk.Now()); due != 500*time.Millisecond {
			t.Errorf("first backoff %v, want 500ms (half the 1s base: equal jitter at 0)", due)
		}
		h.clk.Advance(time.Second)
		h.settle()
		items, _, _ = h.st.ListOutbox(ctx, store.OutboxFilter{Status: store.OutboxPending}, store.Page{})
		if len(items) != 1 || items[0].NextAt.Sub(h.clk.Now()) != 30*time.Second {
			t.Fatalf("Retry-After must be honoured: %+v", items)
		}
		h.clk.Advance(30 * time.Second)
		h.settle()
		if d := h.dialog(); d.State != "issue_open" {
			t.Fatalf("state %s", d.State)
		}
		// Each try tells the executor its attempt number (Okdesk looks for an earlier
		// try's issue when it is above 1).
		var attempts []int
		for _, c := range h.conn.calls {
			if c.Kind == "okdesk.create_issue" {
				attempts = append(attempts, c.Attempt)
			}
		}
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Errorf("attempts passed to the executor: %v, want [1 2 3]", attempts)
		}

		// A non-retryable failure goes back to the dialog at once as action.failed.
		h2 := newHarnessOn(t, "../../flows.d", freshDSN(t, dsn))
		h2.conn.answers["okdesk.create_issue"] = []error{&connectors.Error{Connector: "okdesk", Code: connectors.CodeBadRequest, Status: 422, Message: "title is too long"}}
		h2.append(h2.wa("hi"), h2.wa("Анна"), h2.wa("Не греет котёл"))
		h2.settle()
		d := h2.dialog()
		if d.State != "with_operator" || d.Status != dialog.Handoff {
			t.Errorf("failed issue: %s/%s", d.State, d.Status)
		}
		failed, _, _ := h2.st.ListOutbox(ctx, store.OutboxFilter{Status: store.OutboxFailed}, store.Page{})
		if len(failed) != 1 || failed[0].Attempts != 1 {
			t.Errorf("4xx must not be retried: %+v", failed)
		}
		if got := h2.conn.sent(); !strings.Contains(got[len(got)-1], "Оператор перезвонит") {
			t.Errorf("customer not told: %q", got)
		}

		// Retryable failures past MaxAttempts end dead.
		h3 := newHarnessOn(t, "../../flows.d", freshDSN(t, dsn))
		e := &connectors.Error{Connector: "okdesk", Code: connectors.CodeNetwork, Retryable: true}
		h3.conn.answers["okdesk.create_issue"] = []error{e, e, e, e}
		h3.append(h3.wa("hi"), h3.wa("Анна"), h3.wa("Не греет котёл"))
		for i := 0; i < 4; i++ {
			h3.settle()
			h3.clk.Advance(time.Hour)
		}
		dead, _, _ := h3.st.ListOutbox(ctx, store.OutboxFilter{Status: store.OutboxDead}, store.Page{})
		if len(dead) != 1 || dead[0].Attempts != 3 {
			t.Errorf("dead after 3 attempts: %+v", dead)
		}
	})
}

func TestOneDialogInArrivalOrder(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newHarnessOn(t, "testdata/counter", dsn)
		const n = 200
		h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: "tg:start", Keys: []string{"telegram:1"},
			Contact: event.Contact{Channel: "telegram", ID: "1"}, Data: map[string]any{}})
		h.settle()
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: fmt.Sprintf("tg:%d", i),
					Keys: []string{"telegram:1"}, Text: fmt.Sprint(i), Data: map[string]any{}})
			}(i)
		}
		// Process while the events arrive, like the server does.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = h.p.Run(ctx); close(done) }()
		wg.Wait()
		deadline := time.Now().Add(60 * time.Second)
		for {
			pending, _ := h.st.PendingEvents(context.Background(), 0, 1)
			if len(pending) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		d := h.dialog()
		if d.Vars["count"] != float64(n) {
			t.Fatalf("count = %v, want %d (lost updates)", d.Vars["count"], n)
		}
		// The dialog saw the events in their arrival (seq) order.
		hist, err := h.st.DialogHistory(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for _, e := range hist {
			if e.Kind == dialog.HistEvent && e.EventSeq != nil {
				if *e.EventSeq < last {
					t.Fatalf("event %d processed after %d", *e.EventSeq, last)
				}
				last = *e.EventSeq
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	jit := 0.0
	p := New(Config{Store: nil, Flows: engine.NewHolder(nil, engine.MustLoader(registry.DryRun())), BackoffBase: 2 * time.Second, BackoffMax: time.Minute,
		Jitter: func() float64 { return jit }})
	defer p.Inbox().Close()
	cases := []struct {
		attempt    int
		jitter     float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 0, time.Second},
		{1, 0.999999, 0, 2 * time.Second},
		{2, 0, 0, 2 * time.Second},
		{3, 0.5, 0, 6 * time.Second},
		{10, 0, 0, 30 * time.Second}, // capped at max: [30s, 60s)
		{10, 0.999999, 0, time.Minute},
		{1, 0, 90 * time.Second, 90 * time.Second}, // Retry-After wins
	}
	for _, c := range cases {
		jit = c.jitter
		got := p.Backoff(c.attempt, c.retryAfter).Round(time.Millisecond)
		if got != c.want {
			t.Errorf("Backoff(%d, jitter %v, retry-after %v) = %v, want %v", c.attempt, c.jitter, c.retryAfter, got, c.want)
		}
	}
}

// TestOutboxKeepsDialogOrder: the actions of one dialog are performed in the order
// the flow produced them, even with many outbox workers.
func TestOutboxKeepsDialogOrder(t *testing.T) {
	h := newHarness(t, "testdata/burst")
	h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: "tg:burst", Keys: []string{"telegram:7"},
		Contact: event.Contact{Channel: "waba", ID: "7"}, Data: map[string]any{}})
	h.settle()
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}
	if got := h.conn.sent(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("sent in order %v, want %v", got, want)
	}
}

// runWithReplica runs the harness's processor and a second one on the same
// database, as two replicas, until no event is pending (or timeout passes).
func (h *harness) runWithReplica(timeout time.Duration) {
	h.t.Helper()
	if h.p.cfg.Exclusive {
		h.t.Fatal("runWithReplica: the harness's processor is exclusive (use newSharedHarness)")
	}
	ctx := context.Background()
	st2, err := store.Open(ctx, h.dsn, slog.New(slog.DiscardHandler), store.WithClock(h.clk.Now))
	if err != nil {
		h.t.Fatal(err)
	}
	defer st2.Close()
	p2 := New(Config{Store: st2, Flows: h.flows, Registry: connectors.NewRegistry(), Now: h.clk.Now, Poll: 10 * time.Millisecond})
	defer p2.Inbox().Close()
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range []*Processor{h.p, p2} {
		wg.Add(1)
		go func(p *Processor) { defer wg.Done(); _ = p.Run(runCtx) }(p)
	}
	deadline := time.Now().Add(timeout)
	for {
		pending, _ := h.st.PendingEvents(ctx, 0, 1)
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
}

// TestTwoProcessorsApplyEachEventOnce runs two processors on one database, as two
// replicas would: every event is applied exactly once (the step that loses the race
// rolls back with store.ErrSettled).
func TestTwoProcessorsApplyEachEventOnce(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newSharedHarness(t, "testdata/counter", dsn)
		ctx := context.Background()
		const n = 60
		for c := 0; c < 3; c++ { // three conversations
			for i := 0; i < n; i++ {
				h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: fmt.Sprintf("tg:%d:%d", c, i),
					Keys: []string{fmt.Sprintf("telegram:%d", c)}, Contact: event.Contact{Channel: "telegram", ID: fmt.Sprint(c)}, Data: map[string]any{}})
			}
		}
		h.runWithReplica(60 * time.Second)
		ds, _, err := h.st.ListDialogs(ctx, store.DialogFilter{}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 3 {
			t.Fatalf("%d dialogs, want 3 (one start per conversation)", len(ds))
		}
		for _, d := range ds {
			// The first event starts the dialog; the other n-1 each add one.
			if d.Vars["count"] != float64(n-1) {
				t.Errorf("dialog %d: count %v, want %d", d.ID, d.Vars["count"], n-1)
			}
		}
	})
}

// TestMigrateOnReload: a flow that declares migrate moves its live dialogs to the
// new version on reload; a reload that would strand dialogs is refused.
func TestMigrateOnReload(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		write := func(src string) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, "ask.yaml"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(`flow: ask
start: telegram.message
initial: ask_phone
states:
  ask_phone:
    on: { telegram.message: [ { send: "v1 phone?" } ] }
`)
		h := newHarnessOn(t, dir, dsn)
		tg := func(key string) event.Event {
			return event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: key, Keys: []string{"telegram:1"},
				Contact: event.Contact{Channel: "waba", ID: "1"}, Data: map[string]any{}}
		}
		h.append(tg("m1"))
		h.settle()

		// v2 renames the state without saying where the waiting dialog goes: refused.
		write(`flow: ask
start: telegram.message
initial: ask_contact
migrate: {}
states:
  ask_contact:
    on: { telegram.message: [ { send: "v2 contact?" } ] }
`)
		dry := h.p.Reload(context.Background(), true)
		if dry.Result != engine.ReloadError || !dry.DryRun || len(dry.Stranded) != 1 || dry.Stranded[0].Dialogs != 1 {
			t.Fatalf("dry run of a stranding reload: %+v", dry)
		}
		rep := h.p.Reload(context.Background(), false)
		if rep.Result != engine.ReloadError || len(rep.Diagnostics) != 1 || rep.Diagnostics[0].Code != engine.CodeStrandedDialogs ||
			!strings.Contains(rep.Diagnostics[0].Message, `1 live dialog(s) of ask wait in state "ask_phone"`) {
			t.Fatalf("stranding reload: %+v", rep)
		}
		// v3 maps it: accepted, and the dialog continues in the new state on v3.
		write(`flow: ask
start: telegram.message
initial: ask_contact
migrate: { ask_phone: ask_contact }
states:
  ask_contact:
    on: { telegram.message: [ { send: "v3 contact?" } ] }
`)
		h.reloadAndAdopt()
		h.append(tg("m2"))
		h.settle()
		d := h.dialog()
		if d.State != "ask_contact" || d.FlowHash != h.flows.Current().Flow("ask").Hash {
			t.Errorf("dialog %s on %s, want ask_contact on v3", d.State, d.FlowHash)
		}
		if got := h.conn.sent(); len(got) != 1 || got[0] != "v3 contact?" {
			t.Errorf("sent %q, want the v3 reply", got)
		}
	})
}

// TestPinnedWithoutMigrate: without migrate a running dialog keeps its version
// (loaded from the database by hash), and a new dialog uses the new one.
func TestPinnedWithoutMigrate(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		write := func(reply string) {
			t.Helper()
			src := "flow: ask\nstart: telegram.message\ninitial: a\nstates:\n  a:\n    on: { telegram.message: [ { send: \"" + reply + "\" } ] }\n"
			if err := os.WriteFile(filepath.Join(dir, "ask.yaml"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("v1")
		h := newHarnessOn(t, dir, dsn)
		msg := func(chat, key string) event.Event {
			return event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: key, Keys: []string{"telegram:" + chat},
				Contact: event.Contact{Channel: "waba", ID: chat}, Data: map[string]any{}}
		}
		h.append(msg("1", "a1"))
		h.settle()
		write("v2")
		if rep := h.p.Reload(context.Background(), false); rep.Result != engine.ReloadOK {
			t.Fatal(rep)
		}
		h.append(msg("1", "a2"), msg("2", "b1"), msg("2", "b2"))
		h.settle()
		byChat := map[string]string{}
		for _, c := range h.conn.calls {
			byChat[c.Dialog.ContactID] = fmt.Sprint(c.Params["text"])
		}
		if byChat["1"] != "v1" || byChat["2"] != "v2" || len(h.conn.calls) != 2 {
			t.Errorf("replies by chat %v, want the pinned dialog on v1 and the new one on v2", byChat)
		}
	})
}

// TestAddressedToNoDialog: an event addressed to a dialog that does not exist (an
// action's result after the dialog was purged) is unrouted at once, as in the test
// world, not retried until it fails.
func TestAddressedToNoDialog(t *testing.T) {
	h := newHarness(t, "../../flows.d")
	res := h.append(event.ActionResult{ActionID: 5, DialogID: 999, Kind: "send", Data: map[string]any{}}.Event(h.clk.Now()))
	h.settle()
	e, err := h.st.GetEvent(context.Background(), res[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != store.EventUnrouted || e.Attempts != 1 {
		t.Errorf("status %s after %d attempts, want unrouted after 1", e.Status, e.Attempts)
	}
}

// TestControlAppliedByAnotherReplica: replicas share a database, and the one that
// takes an operator's control from the API may not be the one that processes it;
// the control still answers with the dialog after it.
func TestControlAppliedByAnotherReplica(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newHarnessOn(t, "../../flows.d", dsn)
		ctx := context.Background()
		h.append(h.wa("Здравствуйте"))
		h.settle()
		id := h.dialog().ID
		st2, err := store.Open(ctx, h.dsn, slog.New(slog.DiscardHandler), store.WithClock(h.clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		// Only the second replica runs: the first stores the control and waits.
		p2 := New(Config{Store: st2, Flows: h.flows, Registry: connectors.NewRegistry(), Now: h.clk.Now, Poll: 10 * time.Millisecond})
		defer p2.Inbox().Close()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = p2.Run(runCtx) }()
		defer func() { cancel(); <-done }()
		a, err := h.p.Control(ctx, event.Control{Kind: event.ControlTakeover, DialogID: id, Operator: "anna", Reason: "a call"})
		if err != nil {
			t.Fatalf("control: %v", err)
		}
		if a.Dialog == nil || a.Dialog.ID != id || a.Dialog.Status != dialog.Handoff {
			t.Fatalf("the control answered %+v, want dialog %d in handoff", a.Dialog, id)
		}
		a, err = h.p.Control(ctx, event.Control{Kind: event.ControlHandback, DialogID: id, Operator: "anna"})
		if err != nil || a.Dialog.Status != dialog.Active {
			t.Fatalf("handback: %v %+v", err, a)
		}
	})
}

// waFrom is h.wa from another customer.
func (h *harness) waFrom(phone, text string) event.Event {
	e := h.wa(text)
	e.Keys = []string{"waba:" + phone, "phone:" + phone}
	e.Contact.ID, e.Contact.Phone = phone, phone
	return e
}

// resultOf returns the stored result event of the dialog's action of kind.
func (h *harness) resultOf(kind string) store.Event {
	h.t.Helper()
	evs, _, err := h.st.ListEvents(context.Background(), store.EventFilter{Source: event.SourceAction}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range evs { // newest first
		if _, k, ok := event.ActionOf(&e.Event); ok && k == kind {
			return e
		}
	}
	h.t.Fatalf("no result of %s", kind)
	return store.Event{}
}

// TestActionResultInline: an action's result is applied to its dialog in the
// transaction that records it when nothing that arrived before it is still to
// come for the dialog (other dialogs' events may wait); when an earlier event of
// the dialog has not been handed out yet, the result waits for its turn and the
// dialog sees both in arrival order.
func TestActionResultInline(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, "../../flows.d")
	routeOnly := func() {
		if err := h.p.RouteOnce(ctx); err != nil {
			t.Fatal(err)
		}
		h.p.Drain()
	}
	// toIssue walks a customer to the step that queues okdesk.create_issue.
	toIssue := func(h *harness) {
		h.append(h.wa("Здравствуйте"))
		h.settle()
		h.append(h.wa("Анна"))
		h.settle()
		h.append(h.wa("Течёт кондиционер"))
		routeOnly()
	}
	// The router has read everything: Okdesk's answer is applied where it is recorded.
	toIssue(h) // the step queues okdesk.create_issue
	if _, err := h.p.RunOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.resultOf("okdesk.create_issue"); r.Status != store.EventProcessed {
		t.Fatalf("Okdesk's answer was not applied where it was recorded: %s", r.Status)
	}
	if d := h.dialog(); d.State != "issue_open" {
		t.Fatalf("dialog after the inline result: %+v", d)
	}
	h.settle()

	// Another customer's message waits unseen: it is not the dialog's, so the
	// answer is applied where it is recorded all the same, and the message then
	// starts a dialog of its own.
	h = newHarness(t, "../../flows.d")
	toIssue(h)
	first := h.dialog().ID
	other := h.append(h.waFrom("79160000002", "Добрый день"))[0].Seq
	if _, err := h.p.RunOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.resultOf("okdesk.create_issue"); r.Status != store.EventProcessed {
		t.Fatalf("another customer's unread message held the answer back: %s", r.Status)
	}
	if e, err := h.st.GetEvent(ctx, other); err != nil || e.Status != store.EventPending {
		t.Fatalf("the other customer's message: %+v %v, want it still pending", e, err)
	}
	h.settle()
	if e, err := h.st.GetEvent(ctx, other); err != nil || e.Status != store.EventProcessed || e.DialogID == nil || *e.DialogID == first {
		t.Fatalf("the other customer's message after settling: %+v %v", e, err)
	}

	// The same customer writes before Okdesk answers, and the router has not seen
	// it yet: the answer waits, and the message is processed first.
	h = newHarness(t, "../../flows.d")
	toIssue(h)
	msg := h.append(h.wa("Это срочно"))[0].Seq
	if _, err := h.p.RunOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	res := h.resultOf("okdesk.create_issue")
	if res.Status != store.EventPending {
		t.Fatalf("the answer overtook the customer's earlier message: %s", res.Status)
	}
	h.settle()
	hist, err := h.st.DialogHistory(ctx, h.dialog().ID)
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	for _, l := range hist {
		if l.Kind == dialog.HistEvent && l.EventSeq != nil && (*l.EventSeq == msg || *l.EventSeq == res.Seq) {
			order = append(order, *l.EventSeq)
		}
	}
	if len(order) != 2 || order[0] != msg {
		t.Errorf("the dialog saw %v, want the message %d before the answer %d", order, msg, res.Seq)
	}

	// An Okdesk event about the issue arrives before Okdesk's answer is recorded and
	// the router has not read it: the answer binds its key, so it waits, and the
	// earlier event does not find the dialog by a key bound after it.
	h = newHarness(t, "../../flows.d")
	toIssue(h)
	early := h.append(event.Event{Source: "okdesk", Type: "okdesk.new_ticket_status", DedupeKey: "okdesk:s:1542:early",
		Keys: []string{"okdesk:issue:1542"}, Data: map[string]any{"new_status": "completed", "issue_id": "1542"}})[0].Seq
	if _, err := h.p.RunOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.resultOf("okdesk.create_issue"); r.Status != store.EventPending {
		t.Fatalf("the answer bound a key an earlier unread event carries: %s", r.Status)
	}
	h.settle()
	if e, err := h.st.GetEvent(ctx, early); err != nil || e.Status != store.EventUnrouted {
		t.Fatalf("the early Okdesk event: %+v %v, want it unrouted (no dialog held its key yet)", e, err)
	}
	if d := h.dialog(); d.State != "issue_open" {
		t.Fatalf("dialog after settling: %+v", d)
	}
}

// TestUnread: the index of the events the router has yet to hand out.
func TestUnread(t *testing.T) {
	u := newUnread()
	msg := func(keys ...string) *event.Event { return &event.Event{Source: "waba", Keys: keys} }
	result := event.ActionResult{ActionID: 7, DialogID: 42, Kind: "send"}.Event(time.Now())
	u.add(10, msg("waba:a", "phone:a"))
	u.add(11, &result)
	u.add(12, msg("waba:b"))
	u.add(13, msg()) // no keys: not indexed
	for _, c := range []struct {
		seq  int64
		keys []string
		want bool
	}{
		{11, []string{"waba:a"}, true},
		{10, []string{"waba:a"}, false}, // only events stored before seq count
		{20, []string{"phone:a"}, true},
		{20, []string{unreadAddress(42)}, true},
		{20, []string{unreadAddress(43), "waba:c"}, false},
		{12, []string{"waba:b"}, false},
	} {
		if got := u.before(c.seq, c.keys); got != c.want {
			t.Errorf("before(%d, %v) = %v, want %v", c.seq, c.keys, got, c.want)
		}
	}
	u.remove(10)
	if u.before(20, []string{"waba:a", "phone:a"}) || u.size() != 2 {
		t.Errorf("a removed event still counts (size %d)", u.size())
	}
	// A rolled-back event's seq given to the next one: both keys go with the seq.
	u.add(14, msg("waba:x"))
	u.add(14, msg("waba:y"))
	u.remove(14)
	if u.before(20, []string{"waba:x"}, []string{"waba:y"}) {
		t.Error("a reused seq left a key behind")
	}
	// The sweep drops what the router has read past, once the index is large.
	for seq := int64(100); seq < 100+sweepFrom; seq++ {
		u.add(seq, msg(fmt.Sprint("k", seq)))
	}
	u.sweep(50)
	if u.before(20, []string{unreadAddress(42)}) || !u.before(200, []string{"k150"}) {
		t.Error("sweep(50) kept an event up to 50 or dropped a later one")
	}
	var nilIndex *unread // PostgreSQL: no index
	nilIndex.remove(1)
	nilIndex.sweep(1)
}
