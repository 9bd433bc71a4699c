package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fixit-exchange/fixit/engine/store"
)

// The console in a real browser: Debian's Chromium, driven over the DevTools
// protocol, against the real `fixit serve` with fake Graph and Okdesk APIs.

const operatorToken = "e2e-operator-token-anna"

// chromiumPath finds the browser: $FIXIT_CHROMIUM, else Debian's. Without one the
// test fails under CI (which installs it) and is skipped elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("FIXIT_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is missing and CI is set: install it (apt-get install -y chromium; .ci/run does)")
	}
	t.Skip("Chromium is not installed (apt-get install -y chromium); the console's browser test needs it")
	return ""
}

// screenshotDir is where the test saves what the browser showed:
// $FIXIT_SCREENSHOTS when set (kept), else the test's temporary folder.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("FIXIT_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// newBrowser starts a headless Chromium with a fresh profile; its context ends
// with the test, and every action must finish within the test's deadline.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 8*time.Minute) // slow only when the whole suite shares the cores
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// shot saves a full-page PNG of what the browser shows.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs browser actions, failing the test with what was being done.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// seedDeadAction stores, before fixit starts, an Okdesk comment whose retries
// ran out: the outbox's dead item for the operator to retry.
func seedDeadAction(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Step(ctx, func(tx store.StepTx) error {
		return tx.Enqueue(&store.OutboxItem{Kind: "okdesk.comment",
			Params: json.RawMessage(`{"issue_id":"1542","content":"The engineer will call at 10:00","public":true}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	items, err := st.ClaimOutbox(ctx, time.Now().Add(time.Minute), 1, time.Minute)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim the seeded action: %v (%d)", err, len(items))
	}
	if err := st.FailOutbox(ctx, items[0].ID, store.OutboxDead, "http_503", "okdesk answered 503 Service Unavailable (8 attempts)"); err != nil {
		t.Fatal(err)
	}
}

// apiJSON reads an admin API answer.
func (in *instance) apiJSON(path string) map[string]any {
	in.t.Helper()
	code, b := in.do("GET", path, nil, "Authorization", "Bearer "+adminToken)
	if code != 200 {
		in.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		in.t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

func TestConsoleInBrowser(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	dir := screenshotDir(t)
	apis := newFakeAPIs(t)
	flows := t.TempDir()
	src, err := os.ReadFile("../../flows.d/simple_lead_flow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(flows, "simple_lead_flow.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(t.TempDir(), "fixit.db")
	seedDeadAction(t, dsn)
	in := startFixit(t, dsn, flows,
		"WABA_API_URL="+apis.srv.URL, "WABA_ACCESS_TOKEN=e2e-graph-token", "WABA_PHONE_NUMBER_ID=498761234560011",
		"OKDESK_API_URL="+apis.srv.URL+"/api/v1", "OKDESK_API_TOKEN=e2e-okdesk-token",
		"FIXIT_OPERATORS=anna:"+operatorToken)
	base := in.base + "/console/"

	// Sign in as the operator Anna.
	browse(t, ctx, "open the console", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("token")))
	shot(t, ctx, dir, "01-sign-in")
	browse(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("token"), operatorToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("ov-dialogs")))

	// The dialog list is open when the first message arrives: the row appears by itself.
	browse(t, ctx, "open the dialogs", chromedp.Navigate(base+"dialogs"), chromedp.WaitVisible(chromedp.ID("dialog-rows")))
	waitSSE(t, ctx)
	in.postWA(waText(1, "Здравствуйте"))
	browse(t, ctx, "see the new dialog appear", chromedp.WaitVisible(chromedp.CSS(`tr[data-dialog="1"]`)))
	eventually(t, "the greeting at the Graph API", func() bool { return len(apis.texts()) >= 1 })
	in.postWA(waText(2, "Анна"))
	eventually(t, "the question about the problem", func() bool { return len(apis.texts()) >= 2 })
	shot(t, ctx, dir, "02-dialogs")

	// Open it: the thread shows the customer and the bot; the trace the guards.
	browse(t, ctx, "open the dialog", chromedp.Click(chromedp.CSS(`tr[data-dialog="1"] a`)),
		chromedp.WaitVisible(chromedp.ID("thread")))
	waitText(t, ctx, "#thread", "Анна", "the customer's name in the thread")
	waitText(t, ctx, "#trace", "letters(event.text) >= 2", "the guard in the trace")

	// Take over, with a reason.
	browse(t, ctx, "take over",
		chromedp.Click(chromedp.CSS("#ctl-takeover summary")),
		chromedp.SendKeys(chromedp.CSS(`#ctl-takeover input[name="reason"]`), "the customer asked for a person"),
		chromedp.Submit(chromedp.CSS(`#ctl-takeover form`)),
		chromedp.WaitVisible(chromedp.CSS(`#dialog-status .s-handoff`)))
	if d := in.apiJSON("/api/v1/dialogs/1"); d["status"] != "handoff" {
		t.Fatalf("after the takeover the dialog is %v", d["status"])
	}

	// Write as the operator: the message reaches the Graph API.
	const reply = "Anna here, a person: how can I help?"
	browse(t, ctx, "write to the customer",
		chromedp.SendKeys(chromedp.CSS(`#ctl-message textarea[name="text"]`), reply),
		chromedp.Submit(chromedp.CSS(`#ctl-message form`)),
		chromedp.WaitVisible(chromedp.CSS(`.from-operator`)))
	eventually(t, "the operator's message at the Graph API", func() bool { return slices.Contains(apis.texts(), reply) })
	waitText(t, ctx, ".from-operator", "anna", "the operator's name on the bubble")
	// The customer answers while the person has the dialog: it shows at once, held.
	in.postWA(waText(3, "Thank you, the air conditioner leaks"))
	browse(t, ctx, "see the held message live", chromedp.WaitVisible(chromedp.CSS(`.msg.held`)))
	shot(t, ctx, dir, "03-dialog-handoff")

	// Hand back to the bot.
	browse(t, ctx, "hand back",
		chromedp.Click(chromedp.CSS("#ctl-handback summary")),
		chromedp.Submit(chromedp.CSS(`#ctl-handback form`)),
		chromedp.WaitVisible(chromedp.CSS(`#dialog-status .s-active`)))
	hist := fmt.Sprint(in.apiJSON("/api/v1/dialogs/1")["history"])
	for _, want := range []string{"takeover", "the customer asked for a person", "handback", "operator:anna"} {
		if !strings.Contains(hist, want) {
			t.Errorf("the dialog's history lacks %q", want)
		}
	}

	// Retry the dead action.
	browse(t, ctx, "open the outbox", chromedp.Navigate(base+"outbox"), chromedp.WaitVisible(chromedp.CSS(`tr[data-action="1"]`)))
	shot(t, ctx, dir, "04-outbox")
	browse(t, ctx, "retry the dead action", chromedp.Submit(chromedp.CSS(`tr[data-action="1"] form`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	eventually(t, "the comment at Okdesk", func() bool {
		apis.mu.Lock()
		defer apis.mu.Unlock()
		return slices.Contains(apis.okdesk, "POST /issues/1542/comments")
	})
	eventually(t, "the retried action done", func() bool {
		items, _ := in.apiJSON("/api/v1/outbox?status=done")["items"].([]any)
		for _, it := range items {
			if it.(map[string]any)["id"] == 1.0 {
				return true
			}
		}
		return false
	})

	// A Telegram update no flow takes is unrouted; after the Telegram flow is added
	// and the flows reloaded (by the administrator), it is re-driven.
	tg := []byte(`{"update_id":7,"message":{"message_id":1,"date":1764400000,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"Anna"},"text":"/visit 1542"}}`)
	if code, b := in.do("POST", "/webhooks/telegram", tg, "X-Telegram-Bot-Api-Secret-Token", "e2e-telegram-secret",
		"Content-Type", "application/json"); code != 200 {
		t.Fatalf("telegram webhook: %d %s", code, b)
	}
	var unrouted string
	eventually(t, "the unrouted event", func() bool {
		items, _ := in.apiJSON("/api/v1/events?status=unrouted")["items"].([]any)
		if len(items) == 1 {
			unrouted = fmt.Sprint(items[0].(map[string]any)["id"])
		}
		return unrouted != ""
	})
	// The operator may not reload: no button, and the form's post is refused.
	browse(t, ctx, "open the flows as the operator", chromedp.Navigate(base+"flows"), chromedp.WaitVisible(chromedp.CSS("svg.flow-svg")))
	buttons := evaluate[int](t, ctx, "count reload buttons", `document.querySelectorAll("#reload-check").length`)
	if buttons != 0 {
		t.Errorf("the operator sees a reload button")
	}
	browse(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("token")))
	browse(t, ctx, "sign in as the administrator",
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("ov-dialogs")))
	shot(t, ctx, dir, "05-overview")

	ex, err := os.ReadFile("../../examples/telegram_visit_confirmation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(flows, "telegram_visit_confirmation.yaml"), ex, 0o644); err != nil {
		t.Fatal(err)
	}
	browse(t, ctx, "check the reload (dry run)", chromedp.Navigate(base+"flows"),
		chromedp.Click(chromedp.ID("reload-check")), chromedp.WaitVisible(chromedp.ID("reload-now")))
	waitText(t, ctx, ".dryrun", "telegram_visit", "the dry run's added flow")
	if f := in.apiJSON("/api/v1/flows"); len(f["items"].([]any)) != 1 {
		t.Fatalf("the dry run loaded the flows: %v", f["items"])
	}
	shot(t, ctx, dir, "06-reload-dry-run")
	browse(t, ctx, "reload", chromedp.Click(chromedp.ID("reload-now")),
		chromedp.WaitVisible(chromedp.CSS(`svg.flow-svg[data-flow="telegram_visit"]`)))
	if f := in.apiJSON("/api/v1/flows"); len(f["items"].([]any)) != 2 {
		t.Fatalf("after the reload: %v", f["items"])
	}

	// The flows page draws each flow with its states' names.
	for _, f := range in.apiJSON("/api/v1/flows")["items"].([]any) {
		flow := f.(map[string]any)
		names := evaluate[[]string](t, ctx, "read the diagram of "+fmt.Sprint(flow["name"]), fmt.Sprintf(
			`Array.from(document.querySelectorAll('svg.flow-svg[data-flow=%q] g.node .sname')).map(e => e.textContent)`,
			flow["name"]))
		var want []string
		for _, s := range flow["states"].([]any) {
			want = append(want, s.(string))
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("the diagram of %v names %v, want %v", flow["name"], names, want)
		}
	}
	taken := evaluate[int](t, ctx, "count the branches taken",
		`document.querySelectorAll('svg.flow-svg[data-flow="simple_lead"] g.edge.taken').length`)
	if taken < 2 {
		t.Errorf("the diagram marks %d branches taken, want at least 2 (the name, the problem)", taken)
	}
	shot(t, ctx, dir, "07-flows")

	// Re-drive the unrouted event: now the Telegram flow takes it.
	browse(t, ctx, "open the events", chromedp.Navigate(base+"events"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-event="`+unrouted+`"]`)))
	browse(t, ctx, "re-drive", chromedp.Submit(chromedp.CSS(`tr[data-event="`+unrouted+`"] form`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	eventually(t, "the re-driven event processed", func() bool {
		items, _ := in.apiJSON("/api/v1/events?status=processed&source=telegram")["items"].([]any)
		return len(items) == 1 && fmt.Sprint(items[0].(map[string]any)["id"]) == unrouted
	})

	// The dialog on a phone's screen, in Russian.
	browse(t, ctx, "open the dialog on a phone", chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(in.base+"/console/lang?to=ru&back=/console/dialogs/1"), chromedp.WaitVisible(chromedp.ID("thread")))
	waitText(t, ctx, "h1", "Диалог", "the Russian page title")
	shot(t, ctx, dir, "08-dialog-phone-ru")

	// Nothing secret reached the log or a page.
	logs := in.logText()
	for _, secret := range []string{adminToken, operatorToken, "e2e-graph-token", "e2e-okdesk-token"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
	browse(t, ctx, "open a page", chromedp.Navigate(base+"dialogs/1"), chromedp.WaitVisible(chromedp.ID("thread")))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{adminToken, operatorToken} {
		if strings.Contains(html, secret) {
			t.Errorf("a page holds the token %q", secret)
		}
	}
	t.Logf("screenshots in %s", dir)
}

// waitSSE waits until the page's live feed is open.
func waitSSE(t *testing.T, ctx context.Context) {
	t.Helper()
	browse(t, ctx, "wait for the live feed", chromedp.Poll[chromedp.Void](
		`(() => { const e = document.querySelector('[sse-connect]'); const s = e && htmx && e['htmx-internal-data'] && e['htmx-internal-data'].sseEventSource; return !!s && s.readyState === 1; })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
}

// waitText waits until the element's text holds want.
func waitText(t *testing.T, ctx context.Context, sel, want, what string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel), chromedp.AtLeast(0)))
		t.Fatalf("%s: %q does not show %q (%v); it shows:\n%.1500s", what, sel, want, err, text)
	}
}

// evaluate runs a script in the page and returns its value.
func evaluate[T any](t *testing.T, ctx context.Context, what, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}
