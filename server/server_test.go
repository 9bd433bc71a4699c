package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// logLines parses the env's JSON log.
func logLines(t *testing.T, e *env) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func accessLines(t *testing.T, e *env) []map[string]any {
	var out []map[string]any
	for _, l := range logLines(t, e) {
		if l["msg"] == "http request" {
			out = append(out, l)
		}
	}
	return out
}

func TestAccessLogAndRequestID(t *testing.T) {
	e := newEnv(t)
	rec := e.do("GET", "/healthz", nil, "X-Request-ID", "abc-123.x:y_z")
	if got := rec.Header().Get("X-Request-ID"); got != "abc-123.x:y_z" {
		t.Errorf("sane incoming request id not kept: %q", got)
	}
	for _, bad := range []string{"", "has space", "quote\"", strings.Repeat("a", 129), "ünï"} {
		rec := e.do("GET", "/healthz", nil, "X-Request-ID", bad)
		got := rec.Header().Get("X-Request-ID")
		if got == bad || len(got) != 24 || !saneRequestID(got) {
			t.Errorf("incoming %q: answered id %q, want a generated one", bad, got)
		}
	}
	lines := accessLines(t, e)
	if len(lines) != 6 {
		t.Fatalf("%d access lines for 6 requests", len(lines))
	}
	l := lines[0]
	for _, k := range []string{"method", "path", "status", "duration", "request_id", "bytes"} {
		if _, ok := l[k]; !ok {
			t.Errorf("access line lacks %q: %v", k, l)
		}
	}
	if l["level"] != "INFO" || l["request_id"] != "abc-123.x:y_z" || l["path"] != "/healthz" || l["status"] != float64(200) ||
		l["bytes"] != float64(len(`{"status":"ok"}`)) {
		t.Errorf("access line: %v", l)
	}
}

// TestLogsHoldNoSecrets drives every kind of request with every secret in play and
// checks the log, like TestMain does for the whole suite.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	text := fixture(t, "waba/text.json")
	tg := fixture(t, "telegram/message.json")
	reqs := []struct {
		method, target string
		body           []byte
		headers        []string
	}{
		{"GET", "/webhooks/waba?hub.mode=subscribe&hub.verify_token=" + verifyToken + "&hub.challenge=42", nil, nil},
		{"GET", "/webhooks/waba?hub.mode=subscribe&hub.verify_token=" + url.QueryEscape(verifyToken+"x") + "&hub.challenge=42", nil, nil},
		{"POST", "/webhooks/waba", text, []string{"X-Hub-Signature-256", sign(text)}},
		{"POST", "/webhooks/waba", text, []string{"X-Hub-Signature-256", "sha256=00"}},
		{"POST", "/webhooks/okdesk", fixture(t, "okdesk/new_comment.json"), []string{"Authorization", basic(okdeskUser, okdeskPass)}},
		{"POST", "/webhooks/okdesk", fixture(t, "okdesk/new_comment.json"), []string{"Authorization", basic(okdeskUser, okdeskPass+"x")}},
		{"POST", "/webhooks/onec", fixture(t, "onec/payment_paid.json"), []string{"Authorization", "Bearer " + onecToken}},
		{"POST", "/webhooks/onec", []byte(`{"id":"1","event":"payment"}`), []string{"Authorization", "Bearer " + onecToken}},
		{"POST", "/webhooks/telegram", tg, []string{"X-Telegram-Bot-Api-Secret-Token", tgSecret}},
		{"POST", "/webhooks/telegram", tg, []string{"X-Telegram-Bot-Api-Secret-Token", tgSecret + "x"}},
		{"GET", "/api/v1/events?limit=5", nil, []string{"Authorization", "Bearer " + adminToken}},
		{"GET", "/api/v1/events", nil, []string{"Authorization", "Bearer " + adminToken + "x"}},
		{"POST", "/api/v1/events", []byte(`{"source":"waba","type":"waba.message","text":"Здравствуйте, тайна"}`), []string{"Authorization", "Bearer " + adminToken}},
		{"GET", "/nope?token=" + adminToken, nil, []string{"Authorization", "Bearer " + adminToken}},
	}
	for _, r := range reqs {
		e.do(r.method, r.target, r.body, r.headers...)
	}
	out := e.log.String()
	if len(accessLines(t, e)) != len(reqs) {
		t.Errorf("%d access lines for %d requests", len(accessLines(t, e)), len(reqs))
	}
	if err := checkLog(out); err != nil {
		t.Error(err)
	}
	if strings.Contains(out, "hub.mode=") || strings.Contains(out, "challenge=42") {
		t.Error("a webhook query string reached the log")
	}
}

func TestRecovery(t *testing.T) {
	e := newEnv(t)
	e.srv.engine.GET("/boom", func(*gin.Context) { panic("kaboom") })
	rec := e.do("GET", "/boom", nil)
	if rec.Code != 500 || errorOf(t, rec) != "internal error" {
		t.Fatalf("panic answer: %d %s", rec.Code, rec.Body)
	}
	var sawPanic, sawAccess bool
	for _, l := range logLines(t, e) {
		if l["msg"] == "panic in http handler" && l["panic"] == "kaboom" && l["level"] == "ERROR" && l["request_id"] != nil {
			sawPanic = true
		}
		if l["msg"] == "http request" && l["status"] == float64(500) {
			sawAccess = true
		}
	}
	if !sawPanic || !sawAccess {
		t.Errorf("panic logged %v, access line with 500 %v:\n%s", sawPanic, sawAccess, e.log.String())
	}
	// The server still serves.
	if rec := e.do("GET", "/healthz", nil); rec.Code != 200 {
		t.Errorf("after a panic: %d", rec.Code)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t)
	if rec := e.do("GET", "/healthz", nil); rec.Code != 200 || rec.Body.String() != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do("GET", "/readyz", nil); rec.Code != 200 || rec.Body.String() != `{"status":"ok"}` {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}

	noFlows := newEnv(t, func(c *Config) { c.Flows = engine.NewHolder(nil, engine.MustLoader(registry.DryRun()), t.TempDir()) })
	rec := noFlows.do("GET", "/readyz", nil)
	if rec.Code != 503 || rec.Body.String() != `{"problems":["no flows loaded"],"status":"not ready"}` {
		t.Errorf("readyz without flows: %d %s", rec.Code, rec.Body)
	}

	stuck := newEnv(t, func(c *Config) { c.Ready = func() error { return errors.New("writer stuck: no commit for 31s") } })
	rec = stuck.do("GET", "/readyz", nil)
	if rec.Code != 503 || rec.Body.String() != `{"problems":["writer stuck: no commit for 31s"],"status":"not ready"}` {
		t.Errorf("readyz with a stuck writer: %d %s", rec.Code, rec.Body)
	}

	_ = e.st.Close()
	rec = e.do("GET", "/readyz", nil)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"database unreachable"`) {
		t.Errorf("readyz with the database closed: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do("GET", "/healthz", nil); rec.Code != 200 {
		t.Errorf("liveness must not depend on the database: %d", rec.Code)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	batch := fixture(t, "waba/batch.json")
	e.do("POST", "/webhooks/waba", batch, "X-Hub-Signature-256", fixtureSignatures["waba/batch.json"])
	e.do("POST", "/webhooks/waba", batch, "X-Hub-Signature-256", fixtureSignatures["waba/batch.json"])
	e.do("POST", "/webhooks/okdesk", []byte(`{}`))
	rec := e.do("GET", "/metrics", nil)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	for _, want := range []string{
		`fixit_events_in_total{result="stored",source="waba",type="waba.message"} 3`,
		`fixit_events_in_total{result="stored",source="waba",type="waba.status"} 1`,
		`fixit_events_in_total{result="duplicate",source="waba",type="waba.message"} 3`,
		`fixit_events_in_total{result="rejected",source="okdesk",type=""} 1`,
		`fixit_dedupe_hits_total{source="waba"} 4`,
		`fixit_webhook_requests_total{endpoint="waba",status="200"} 2`,
		`fixit_webhook_requests_total{endpoint="okdesk",status="401"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// blockingInbox holds Append until released, to test graceful shutdown.
type blockingInbox struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingInbox) Append(_ context.Context, evs []event.Event) ([]store.AppendResult, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	out := make([]store.AppendResult, len(evs))
	for i := range out {
		out[i].Seq = int64(i + 1)
	}
	return out, nil
}

func TestServeGracefulShutdown(t *testing.T) {
	inbox := &blockingInbox{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(c *Config) { c.Inbox = inbox })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()

	resp, err := http.Get(addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TCP: %d", resp.StatusCode)
	}

	// A webhook is storing its events when shutdown begins: it must still be answered 200.
	body := fixture(t, "telegram/message.json")
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", addr+"/webhooks/telegram", strings.NewReader(string(body)))
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", tgSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-inbox.entered
	cancel()
	// Wait until the listener is closed (shutdown has begun), then let the store finish.
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		_ = c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}
	close(inbox.release)
	if code := <-answered; code != 200 {
		t.Errorf("in-flight webhook answered %d during shutdown", code)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after a clean shutdown: %v", err)
	}
}

func TestServeListenerError(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close()
	if err := e.srv.Serve(context.Background(), ln); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve on a closed listener: %v", err)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without dependencies must panic")
		}
	}()
	New(Config{})
}
