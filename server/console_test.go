package server

import (
	"context"
	"crypto/tls"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/server/console"
)

const (
	operatorToken = "operator-tok-5c1d9e2f7a"
	viewerToken   = "viewer-tok-0b7e4d1c9f"
)

// browser is a person using the console: it keeps the cookies the server sets.
type browser struct {
	e       *env
	cookies map[string]*http.Cookie
	lang    string
	tls     bool
}

func (e *env) browser() *browser { return &browser{e: e, cookies: map[string]*http.Cookie{}} }

// do sends one request with the browser's cookies and keeps the ones answered.
func (b *browser) do(method, target string, form url.Values, headers ...string) *httptest.ResponseRecorder {
	b.e.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	if b.tls {
		req.TLS = &tls.ConnectionState{}
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	b.e.srv.Handler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF value of the forms of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%.2000s", page)
	}
	return m[1]
}

// signIn signs in with token and returns the overview page.
func (b *browser) signIn(token string) string {
	t := b.e.t
	t.Helper()
	rec := b.do("GET", "/console/login", nil)
	if rec.Code != 200 {
		t.Fatalf("login page: %d", rec.Code)
	}
	rec = b.do("POST", "/console/login", url.Values{"csrf": {csrf(t, rec.Body.String())}, "token": {token}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/" {
		t.Fatalf("sign-in: %d %s\n%s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	rec = b.do("GET", "/console/", nil)
	if rec.Code != 200 {
		t.Fatalf("overview after sign-in: %d\n%s", rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

// consoleEnv is a server with an operator and a viewer, and a fake processor.
func consoleEnv(t *testing.T, opts ...func(*Config)) (*env, *fakeControls) {
	t.Helper()
	fc := &fakeControls{}
	e := newEnv(t, append([]func(*Config){func(c *Config) {
		c.Operators = map[string]string{"anna": operatorToken}
		c.Viewers = map[string]string{"vera": viewerToken}
		c.Controls = fc
	}}, opts...)...)
	return e, fc
}

// fakeControls records the controls the console asks for.
type fakeControls struct {
	calls []event.Control
	err   error
}

func (f *fakeControls) Control(_ context.Context, c event.Control) (*store.Dialog, error) {
	f.calls = append(f.calls, c)
	if f.err != nil {
		return nil, f.err
	}
	return &store.Dialog{Dialog: dialog.Dialog{ID: c.DialogID, Status: dialog.Handoff}}, nil
}

func (f *fakeControls) RetryAction(_ context.Context, id int64, by string) (*store.OutboxItem, error) {
	f.calls = append(f.calls, event.Control{Kind: "retry", DialogID: id, Operator: by})
	return &store.OutboxItem{ID: id}, f.err
}

func (f *fakeControls) Redrive(_ context.Context, seq int64, by string) (*store.Event, error) {
	f.calls = append(f.calls, event.Control{Kind: "redrive", DialogID: seq, Operator: by})
	return &store.Event{Seq: seq}, f.err
}

// seedDialog stores one dialog of the demo flow with a history line and an action.
func seedDialog(t *testing.T, e *env, status dialog.Status) int64 {
	t.Helper()
	ctx := context.Background()
	res, err := e.st.AppendEvents(ctx, []event.Event{{Source: "waba", Type: "waba.message", At: t0, DedupeKey: "seed:" + string(status),
		Text: "Hello there", Contact: event.Contact{Channel: "waba", ID: "79161234567", Phone: "79161234567", Name: "Anna"},
		Keys: []string{"phone:79161234567"}}})
	if err != nil {
		t.Fatal(err)
	}
	seq := res[0].Seq
	var id int64
	err = e.st.Step(ctx, func(tx store.StepTx) error {
		d := &store.Dialog{Dialog: dialog.Dialog{Flow: "demo", FlowHash: e.flows.Current().Flow("demo").Hash, State: "ask",
			Status: status, Vars: map[string]any{"name": "Anna"}, Channel: "waba", ContactID: "79161234567", Phone: "79161234567"}}
		if err := tx.CreateDialog(d); err != nil {
			return err
		}
		id = d.ID
		if err := tx.BindKey(id, "phone:79161234567"); err != nil {
			return err
		}
		if err := tx.Enqueue(&store.OutboxItem{DialogID: &id, Kind: "send", Params: []byte(`{"text":"Welcome, Anna"}`)}); err != nil {
			return err
		}
		if err := tx.AppendHistory(
			store.HistoryEntry{DialogID: id, Kind: dialog.HistEvent, EventSeq: &seq, Detail: []byte(`{"type":"waba.message","start":true}`)},
			store.HistoryEntry{DialogID: id, Kind: dialog.HistTransition, EventSeq: &seq, ToState: "ask"},
			store.HistoryEntry{DialogID: id, Kind: dialog.HistGuard, EventSeq: &seq, Detail: []byte(`{"branch":1,"line":8,"col":11,"when":"","result":true}`)},
			store.HistoryEntry{DialogID: id, Kind: dialog.HistAction, EventSeq: &seq, Detail: []byte(`{"kind":"send","line":7}`)},
		); err != nil {
			return err
		}
		return tx.MarkEvent(seq, store.EventProcessed, &id, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestConsoleOffWithoutAdminToken(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AdminToken = "" })
	for _, p := range []string{"/console", "/console/", "/console/login", "/console/static/console.css", "/console/dialogs/1"} {
		if rec := e.do("GET", p, nil); rec.Code != 404 || !strings.Contains(rec.Body.String(), "console is off") {
			t.Errorf("GET %s with the console off: %d %s", p, rec.Code, rec.Body.String())
		}
	}
	if rec := e.do("POST", "/console/login", []byte("token=x")); rec.Code != 404 {
		t.Errorf("POST /console/login with the console off: %d", rec.Code)
	}
}

func TestConsoleSignInSessionCookie(t *testing.T) {
	e, _ := consoleEnv(t)
	for _, viaTLS := range []bool{false, true} {
		b := e.browser()
		b.tls = viaTLS
		page := b.signIn(adminToken)
		c := b.cookies[cookieSession]
		if c == nil {
			t.Fatal("no session cookie")
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != viaTLS || c.Path != "/console/" {
			t.Errorf("tls=%v: session cookie %+v: want HttpOnly, SameSite=Strict, Secure only over TLS, Path=/console/", viaTLS, c)
		}
		if strings.Contains(c.Value, adminToken) || len(c.Value) < 40 {
			t.Errorf("the session cookie holds the token or is short: %q", c.Value)
		}
		if strings.Contains(page, adminToken) || strings.Contains(page, c.Value) {
			t.Error("the page shows the token or the session id")
		}
		if !strings.Contains(page, "admin") {
			t.Error("the page does not name who is signed in")
		}
	}
	if strings.Contains(e.log.String(), adminToken) {
		t.Error("the log holds the token")
	}
}

func TestConsoleSignInRefusals(t *testing.T) {
	e, _ := consoleEnv(t)
	b := e.browser()
	rec := b.do("GET", "/console/login", nil)
	token := csrf(t, rec.Body.String())
	tests := []struct {
		name  string
		form  url.Values
		hdr   []string
		code  int
		words string
	}{
		{"unknown token", url.Values{"csrf": {token}, "token": {"not-a-token-of-anyone"}}, nil, 401, "not known"},
		{"no csrf", url.Values{"token": {adminToken}}, nil, 403, "expired"},
		{"wrong csrf", url.Values{"csrf": {"x" + token}, "token": {adminToken}}, nil, 403, "expired"},
		{"cross-site", url.Values{"csrf": {token}, "token": {adminToken}}, []string{"Sec-Fetch-Site", "cross-site"}, 403, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := b.do("POST", "/console/login", tt.form, tt.hdr...)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.words) {
				t.Errorf("%d, want %d with %q:\n%.500s", rec.Code, tt.code, tt.words, rec.Body.String())
			}
			if b.cookies[cookieSession] != nil {
				t.Error("a session cookie was set")
			}
			// the form is answered again with a fresh value
			token = csrf(t, rec.Body.String())
		})
	}
	if strings.Contains(e.log.String(), "not-a-token-of-anyone") {
		t.Error("a refused token reached the log")
	}
}

func TestConsoleNeedsSession(t *testing.T) {
	e, _ := consoleEnv(t)
	b := e.browser()
	rec := b.do("GET", "/console/dialogs", nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/login" {
		t.Errorf("a page without a session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = b.do("GET", "/console/dialogs/rows", nil, "HX-Request", "true")
	if rec.Code != 401 || rec.Header().Get("HX-Redirect") != "/console/login" {
		t.Errorf("a live update without a session: %d %q", rec.Code, rec.Header().Get("HX-Redirect"))
	}
	rec = b.do("POST", "/console/dialogs/1/takeover", url.Values{"reason": {"x"}})
	if rec.Code != 401 {
		t.Errorf("a control without a session: %d", rec.Code)
	}
	b.cookies[cookieSession] = &http.Cookie{Name: cookieSession, Value: "forged"}
	if rec = b.do("GET", "/console/", nil); rec.Code != http.StatusSeeOther {
		t.Errorf("a forged session: %d", rec.Code)
	}
}

func TestConsoleSessionExpires(t *testing.T) {
	e, _ := consoleEnv(t)
	b := e.browser()
	b.signIn(operatorToken)
	now := t0
	e.srv.now = func() time.Time { return now }
	now = now.Add(console.DefaultIdle - time.Minute)
	if rec := b.do("GET", "/console/", nil); rec.Code != 200 {
		t.Fatalf("a session seen %v ago: %d", console.DefaultIdle-time.Minute, rec.Code)
	}
	now = now.Add(console.DefaultIdle)
	if rec := b.do("GET", "/console/", nil); rec.Code != http.StatusSeeOther {
		t.Errorf("an idle session still works: %d", rec.Code)
	}
}

func TestConsoleSignOut(t *testing.T) {
	e, _ := consoleEnv(t)
	b := e.browser()
	page := b.signIn(viewerToken)
	old := b.cookies[cookieSession]
	rec := b.do("POST", "/console/logout", url.Values{"csrf": {csrf(t, page)}})
	if rec.Code != http.StatusSeeOther || b.cookies[cookieSession] != nil {
		t.Fatalf("sign-out: %d, cookie %v", rec.Code, b.cookies[cookieSession])
	}
	b.cookies[cookieSession] = old // a stolen cookie is worth nothing after sign-out
	if rec := b.do("GET", "/console/", nil); rec.Code != http.StatusSeeOther {
		t.Errorf("the session lives on after sign-out: %d", rec.Code)
	}
}

func TestConsoleCSRF(t *testing.T) {
	e, fc := consoleEnv(t)
	id := seedDialog(t, e, dialog.Active)
	b := e.browser()
	page := b.signIn(operatorToken)
	token := csrf(t, page)
	target := "/console/dialogs/" + itoa(id) + "/takeover"
	for name, form := range map[string]url.Values{
		"missing": {"reason": {"busy"}},
		"wrong":   {"reason": {"busy"}, "csrf": {token + "x"}},
		"other":   {"reason": {"busy"}, "csrf": {console.NewToken()}},
	} {
		if rec := b.do("POST", target, form); rec.Code != 403 {
			t.Errorf("%s CSRF value: %d", name, rec.Code)
		}
	}
	if rec := b.do("POST", target, url.Values{"reason": {"busy"}, "csrf": {token}}, "Origin", "https://evil.example"); rec.Code != 403 {
		t.Errorf("a foreign Origin: %d", rec.Code)
	}
	if len(fc.calls) != 0 {
		t.Fatalf("a control without a valid CSRF value ran: %+v", fc.calls)
	}
	rec := b.do("POST", target, url.Values{"reason": {"busy"}, "csrf": {token}}, "Origin", "http://example.com")
	if rec.Code != http.StatusSeeOther || len(fc.calls) != 1 {
		t.Fatalf("a valid control: %d, calls %+v", rec.Code, fc.calls)
	}
	if c := fc.calls[0]; c.Kind != "takeover" || c.DialogID != id || c.Operator != "anna" || c.Reason != "busy" {
		t.Errorf("control %+v", c)
	}
}

func TestConsoleHeaders(t *testing.T) {
	e, _ := consoleEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	for _, p := range []string{"/console/login", "/console/", "/console/flows", "/console/dialogs", "/console/outbox",
		"/console/events", "/console/static/console.css"} {
		rec := b.do("GET", p, nil)
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q allows unsafe sources", p, csp)
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", p, rec.Header().Get("X-Frame-Options"))
		}
		body := rec.Body.String()
		if strings.Contains(body, "<script>") || regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(body) ||
			regexp.MustCompile(`\son[a-z]+=`).MatchString(body) || strings.Contains(body, " style=") {
			t.Errorf("%s has an inline script, handler or style", p)
		}
	}
}

// TestConsolePages renders every page for each role: the viewer gets no button,
// the operator the controls but not the reload, the administrator everything.
func TestConsolePages(t *testing.T) {
	e, _ := consoleEnv(t)
	id := seedDialog(t, e, dialog.Active)
	ctx := context.Background()
	// a dead action, an unrouted event
	err := e.st.Step(ctx, func(tx store.StepTx) error {
		return tx.Enqueue(&store.OutboxItem{DialogID: &id, Kind: "okdesk.create_issue", Params: []byte(`{}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	items, err := e.st.ClaimOutbox(ctx, t0.Add(time.Hour), 10, time.Minute)
	if err != nil || len(items) != 2 {
		t.Fatalf("claim: %v %d", err, len(items))
	}
	if err := e.st.FailOutbox(ctx, items[1].ID, store.OutboxDead, "http_503", "okdesk answered 503"); err != nil {
		t.Fatal(err)
	}
	res, _ := e.st.AppendEvents(ctx, []event.Event{{Source: "telegram", Type: "telegram.message", At: t0, DedupeKey: "tg:1", Text: "hi"}})
	if err := e.st.Step(ctx, func(tx store.StepTx) error { return tx.MarkEvent(res[0].Seq, store.EventUnrouted, nil, "") }); err != nil {
		t.Fatal(err)
	}
	// an event that went to two dialogs and failed in the second (an alongside flow's)
	var beside int64
	res, _ = e.st.AppendEvents(ctx, []event.Event{{Source: "okdesk", Type: "okdesk.new_ticket_status", At: t0, DedupeKey: "ok:1"}})
	if err := e.st.Step(ctx, func(tx store.StepTx) error {
		d := &store.Dialog{Dialog: dialog.Dialog{Flow: "invoice", State: "request", Status: dialog.Failed}}
		if err := tx.CreateDialog(d); err != nil {
			return err
		}
		beside = d.ID
		if err := tx.RecordDeliveries([]store.EventDelivery{{EventSeq: res[0].Seq, DialogID: id, Flow: "demo", Status: store.EventProcessed},
			{EventSeq: res[0].Seq, DialogID: beside, Flow: "invoice", Scope: "invoice", Status: store.EventFailed, Started: true, Error: "boom"}}); err != nil {
			return err
		}
		return tx.MarkEvent(res[0].Seq, store.EventFailed, &id, "flow invoice (dialog 2): boom")
	}); err != nil {
		t.Fatal(err)
	}
	pages := []string{"/console/", "/console/overview/live", "/console/flows", "/console/dialogs", "/console/dialogs/rows",
		"/console/dialogs?phone=916&name=ann&status=active&flow=demo", "/console/dialogs/" + itoa(id), "/console/dialogs/" + itoa(id) + "/live",
		"/console/outbox", "/console/outbox/live", "/console/events", "/console/events/live"}
	for _, who := range []struct {
		token     string
		operate   bool
		reload    bool
		role      string
		dialogRow string
	}{
		{viewerToken, false, false, "viewer", "Anna"},
		{operatorToken, true, false, "operator", "Anna"},
		{adminToken, true, true, "administrator", "Anna"},
	} {
		t.Run(who.role, func(t *testing.T) {
			b := e.browser()
			b.signIn(who.token)
			all := ""
			for _, p := range pages {
				rec := b.do("GET", p, nil)
				if rec.Code != 200 {
					t.Fatalf("GET %s: %d\n%s", p, rec.Code, rec.Body.String())
				}
				body := rec.Body.String()
				if strings.Contains(body, "[") && regexp.MustCompile(`\[[a-z]+\.[a-z._]+\]`).MatchString(body) {
					t.Errorf("GET %s shows an unknown text key: %s", p, regexp.MustCompile(`\[[a-z]+\.[a-z._]+\]`).FindString(body))
				}
				all += body
			}
			hasButtons := strings.Contains(all, `action="/console/dialogs/`) || strings.Contains(all, "/retry") ||
				strings.Contains(all, "/redrive")
			if hasButtons != who.operate {
				t.Errorf("controls shown: %v, want %v", hasButtons, who.operate)
			}
			if got := strings.Contains(all, `action="/console/flows/check"`); got != who.reload {
				t.Errorf("reload button shown: %v, want %v", got, who.reload)
			}
			if !who.operate && strings.Count(all, `method="post"`) != strings.Count(all, `method="post" action="/console/logout"`) {
				t.Errorf("a viewer sees a button that changes something, other than sign-out")
			}
			for _, want := range []string{who.role, who.dialogRow, "Hello there", "Welcome, Anna", "okdesk answered 503",
				"telegram.message", `data-state="ask"`, "<svg", `href="/console/dialogs/` + itoa(beside) + `">#` + itoa(beside) + `</a> <span class="muted">invoice</span>`} {
				if !strings.Contains(all, want) {
					t.Errorf("the pages lack %q", want)
				}
			}
		})
	}
}

func TestConsoleRolesOnPost(t *testing.T) {
	e, fc := consoleEnv(t)
	id := seedDialog(t, e, dialog.Active)
	reloads := 0
	e.srv.cfg.Reload = func(dry bool) engine.ReloadReport {
		reloads++
		return engine.ReloadReport{Result: engine.ReloadUnchanged, DryRun: dry}
	}
	post := func(b *browser, token, target string) int {
		page := b.signIn(token)
		return b.do("POST", target, url.Values{"csrf": {csrf(t, page)}, "reason": {"r"}}).Code
	}
	if code := post(e.browser(), operatorToken, "/console/flows/check"); code != 403 {
		t.Errorf("an operator checks a reload: %d, want 403", code)
	}
	if code := post(e.browser(), operatorToken, "/console/flows/reload"); code != 403 {
		t.Errorf("an operator reloads: %d, want 403", code)
	}
	if code := post(e.browser(), viewerToken, "/console/dialogs/"+itoa(id)+"/takeover"); code != 403 {
		t.Errorf("a viewer takes over: %d, want 403", code)
	}
	if code := post(e.browser(), viewerToken, "/console/outbox/1/retry"); code != 403 {
		t.Errorf("a viewer retries: %d, want 403", code)
	}
	if len(fc.calls) != 0 || reloads != 0 {
		t.Fatalf("refused posts did something: %+v, %d reloads", fc.calls, reloads)
	}
	b := e.browser()
	page := b.signIn(adminToken)
	rec := b.do("POST", "/console/flows/check", url.Values{"csrf": {csrf(t, page)}})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `action="/console/flows/reload"`) || reloads != 1 {
		t.Fatalf("the administrator's dry run: %d, %d reloads\n%.1000s", rec.Code, reloads, rec.Body.String())
	}
	rec = b.do("POST", "/console/flows/reload", url.Values{"csrf": {csrf(t, page)}})
	if rec.Code != http.StatusSeeOther || reloads != 2 {
		t.Fatalf("the administrator's reload: %d, %d reloads", rec.Code, reloads)
	}
	if rec = b.do("GET", "/console/flows", nil); !strings.Contains(rec.Body.String(), "Flows reloaded: unchanged") {
		t.Errorf("no flash after the reload:\n%.1500s", rec.Body.String())
	}
}

func TestConsoleControlErrors(t *testing.T) {
	e, fc := consoleEnv(t)
	id := seedDialog(t, e, dialog.Active)
	b := e.browser()
	page := b.signIn(operatorToken)
	tok := csrf(t, page)
	tests := []struct {
		name    string
		control string
		form    url.Values
		err     error
		flash   string
	}{
		{"reason missing", "takeover", url.Values{}, nil, "missing field &#34;reason&#34;"},
		{"not fitting", "handback", url.Values{}, &engine.ErrControl{Msg: "handback needs a dialog in handoff"}, "handback needs a dialog in handoff"},
		{"queued", "goto", url.Values{"state": {"done"}, "reason": {"r"}}, ErrQueued, "queued"},
		{"message", "message", url.Values{"text": {"Hi from Anna"}}, nil, "Done: Write to the customer"},
		{"template", "message", url.Values{"template_name": {"hello"}, "template_language": {"ru"}, "template_params": {"a\nb\n"}}, nil, "Done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc.err, fc.calls = tt.err, nil
			tt.form.Set("csrf", tok)
			rec := b.do("POST", "/console/dialogs/"+itoa(id)+"/"+tt.control, tt.form)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("%d\n%s", rec.Code, rec.Body.String())
			}
			// The old page's live part may refresh before the redirect is followed:
			// it must leave the flash to the page.
			if live := b.do("GET", "/console/dialogs/"+itoa(id)+"/live", nil, "HX-Request", "true"); live.Code != 200 || strings.Contains(live.Body.String(), `class="flash`) {
				t.Errorf("the live part showed the flash")
			}
			rec = b.do("GET", rec.Header().Get("Location"), nil)
			if !strings.Contains(rec.Body.String(), tt.flash) {
				t.Errorf("the page after it lacks %q", tt.flash)
			}
		})
	}
	if c := fc.calls; len(c) != 1 || c[0].Template["name"] != "hello" || len(c[0].Template["params"].([]any)) != 2 {
		t.Errorf("template control: %+v", c)
	}
	if rec := b.do("POST", "/console/dialogs/"+itoa(id)+"/explode", url.Values{"csrf": {tok}}); rec.Code != 404 {
		t.Errorf("an unknown control: %d", rec.Code)
	}
}

func TestConsoleLanguage(t *testing.T) {
	e, _ := consoleEnv(t)
	b := e.browser()
	b.lang = "ru-RU,ru;q=0.9,en;q=0.5"
	if page := b.signIn(viewerToken); !strings.Contains(page, "Обзор") || !strings.Contains(page, `lang="ru"`) {
		t.Errorf("Accept-Language ru does not give Russian")
	}
	rec := b.do("GET", "/console/lang?to=en&back=/console/dialogs%3Fstatus%3Dactive", nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/dialogs?status=active" {
		t.Fatalf("switch: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if page := b.do("GET", "/console/", nil).Body.String(); !strings.Contains(page, "Overview") {
		t.Errorf("the chosen language is not remembered")
	}
	for _, back := range []string{"https://evil.example/", "//evil.example/x", "/api/v1/flows", `/console/\evil`} {
		if loc := b.do("GET", "/console/lang?to=ru&back="+url.QueryEscape(back), nil).Header().Get("Location"); loc != "/console/" {
			t.Errorf("back=%q goes to %q", back, loc)
		}
	}
}

// TestConsoleTexts checks the catalog: both languages for every key, and every
// key a template names is there.
func TestConsoleTexts(t *testing.T) {
	for _, k := range console.Keys() {
		if en, ru := console.Text("en", k), console.Text("ru", k); en == "" || ru == "" || (en == ru && !strings.HasPrefix(k, "x")) {
			t.Errorf("key %q: en %q, ru %q", k, en, ru)
		}
	}
	used := regexp.MustCompile(`T "([a-z._]+)"`)
	err := fs.WalkDir(console.Templates(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(console.Templates(), p)
		if err != nil {
			return err
		}
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if !console.Known(m[1]) {
				t.Errorf("%s uses the unknown text key %q", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"status.", "ostatus.", "delivery.", "from.", "outbox.", "events."} {
		if !slices.ContainsFunc(console.Keys(), func(k string) bool { return strings.HasPrefix(k, prefix) }) {
			t.Errorf("no key starts with %q", prefix)
		}
	}
	for _, st := range dialog.Statuses {
		if !console.Known("status." + string(st)) {
			t.Errorf("no text for status %s", st)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func init() { forbiddenInLogs = append(forbiddenInLogs, operatorToken, viewerToken) }

// FuzzSafeBack: whatever "back" a link carries, the console only ever sends the
// browser to one of its own pages.
func FuzzSafeBack(f *testing.F) {
	for _, s := range []string{"/console/dialogs?status=active", "//evil.example", "https://evil.example/console/",
		`/console/\evil`, "/console/../api", "javascript:alert(1)", "/console/%2F%2Fevil", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, back string) {
		got := safeBack(back)
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(got, "/console/") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeBack(%q) = %q", back, got)
		}
	})
}
