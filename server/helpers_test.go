package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// Secrets of the test configuration. The suite-wide log check (TestMain) makes sure
// none of them ever reaches a log line.
const (
	appSecret   = "fixit-dev-app-secret"
	verifyToken = "vt-7f1c2e9a-handshake"
	okdeskUser  = "okdesk-hook"
	okdeskPass  = "okd-pass-5b8e1d"
	onecToken   = "onec-tok-93ac77"
	tgSecret    = "tg-secret-4d2b91"
	adminToken  = "admin-tok-e8f3a6"
)

// fixtureSignatures is /work/shared/fixtures/SIGNATURES.md (APP_SECRET=fixit-dev-app-secret).
var fixtureSignatures = map[string]string{
	"waba/batch.json":                    "sha256=8242d560f0411cadb49bf16274ae64361fb0597ba331d447b6a4bbb0d4041455",
	"waba/image.json":                    "sha256=6619d4be2f0a990228ba7330362677ddf437c5c0deae105694dd0ffc0a245407",
	"waba/interactive_button_reply.json": "sha256=ae959d9103594c02c78c9cba659db5bc5312c74f3f58fece7f9535532afe85e0",
	"waba/interactive_list_reply.json":   "sha256=572505cd169db2496e20d793b1572c77823fe25d7266870c6be6fbd68b79d873",
	"waba/location.json":                 "sha256=b6d791faaf414a3f107fb34a6e9fc207f8ab37bbe62f90a96c9b4048fc85d191",
	"waba/status_delivered.json":         "sha256=8d7e1465c8f03fab6788bd77d5a5b1a8f672d28393638aa9e57a8b5804db4bd9",
	"waba/status_failed.json":            "sha256=c48eb982195fb79b8bf708c8ab3e09bbc9c26b4d6189d9edb09424915b4ce946",
	"waba/template_button.json":          "sha256=5ac9aa554ae644b3bbfbe668c48e2043b8e3abb4fef5167109371ee585ada304",
	"waba/text.json":                     "sha256=021d7f110df117708409c079584295c9f1d97caa7cccbe60bb39f8fec990c6d6",
}

// suiteLog collects every log line of every server the suite builds.
var suiteLog lockedBuffer

// forbiddenInLogs are the secrets and customer texts that must never be logged.
var forbiddenInLogs = []string{
	appSecret, verifyToken, okdeskPass, onecToken, tgSecret, adminToken,
	base64.StdEncoding.EncodeToString([]byte(okdeskUser + ":" + okdeskPass)),
	// Message texts of the fixtures (WhatsApp's arrive \u-escaped and are decoded).
	"Здравствуйте", "нужна помощь", "Подтвердите", "Инженер будет", "Заменили", "Анна",
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkLog(suiteLog.String()); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: suite log check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLog reports a forbidden string (or any Cyrillic letter: a customer's text or
// name) found in log output.
func checkLog(s string) error {
	if s == "" {
		return errors.New("no log output at all: the check would prove nothing")
	}
	for _, f := range forbiddenInLogs {
		if strings.Contains(s, f) {
			return fmt.Errorf("log contains %q", f)
		}
	}
	for _, r := range s {
		if r >= 'А' && r <= 'я' || r == 'ё' || r == 'Ё' {
			return fmt.Errorf("log contains Cyrillic text (%q): a customer's text or name", r)
		}
	}
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeInbox dedupes by dedupe key like the store does, and can be told to fail.
type fakeInbox struct {
	mu     sync.Mutex
	seq    int64
	byKey  map[string]int64
	stored []event.Event
	err    error
}

func newFakeInbox() *fakeInbox { return &fakeInbox{byKey: map[string]int64{}} }

func (f *fakeInbox) Append(_ context.Context, events []event.Event) ([]store.AppendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]store.AppendResult, len(events))
	for i, ev := range events {
		if ev.DedupeKey == "" {
			ev.DedupeKey = fmt.Sprintf("gen:%d", f.seq+1)
		}
		if seq, ok := f.byKey[ev.DedupeKey]; ok {
			out[i] = store.AppendResult{Seq: seq, Duplicate: true}
			continue
		}
		f.seq++
		f.byKey[ev.DedupeKey] = f.seq
		f.stored = append(f.stored, ev)
		out[i] = store.AppendResult{Seq: f.seq}
	}
	return out, nil
}

func (f *fakeInbox) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored)
}

func (f *fakeInbox) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// A minimal valid flow.
const goodFlow = "flow: demo\ndescription: test flow\nstart: waba.message\ninitial: ask\nstates:\n  ask:\n    on:\n      waba.message:\n        - goto: done\n  done: { final: true }\n"

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// env is one server under test over a real SQLite store and a fake inbox.
type env struct {
	t        *testing.T
	srv      *Server
	st       *store.GormStore
	inbox    *fakeInbox
	m        *metrics.Metrics
	flows    *engine.Holder
	flowsDir string
	log      *lockedBuffer
}

// newEnv builds a server with every secret set; opts may change the config.
func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, inbox: newFakeInbox(), log: &lockedBuffer{}, flowsDir: t.TempDir()}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(e.log, &suiteLog), &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "fixit.db"), nil, store.WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.st = st
	e.writeFlow("demo.yaml", goodFlow)
	e.flows = engine.NewHolder(func() time.Time { return t0 }, engine.MustLoader(registry.DryRun()), e.flowsDir)
	if r := e.flows.Reload(); r.Result != engine.ReloadOK {
		t.Fatalf("load flows: %+v", r)
	}
	e.m = metrics.New(nil)
	cfg := Config{
		AppSecret: appSecret, VerifyToken: verifyToken, OkdeskUser: okdeskUser, OkdeskPass: okdeskPass,
		OneCToken: onecToken, TelegramSecret: tgSecret, AdminToken: adminToken,
		Inbox: e.inbox, Store: st, Flows: e.flows, Metrics: e.m, Logger: logger, Version: "test",
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv = New(cfg)
	e.srv.now = func() time.Time { return t0 }
	return e
}

func (e *env) writeFlow(name, src string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.flowsDir, name), []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// do runs one request; headers come in name, value pairs.
func (e *env) do(method, target string, body []byte, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// admin runs an authenticated admin request.
func (e *env) admin(method, target string, body []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(method, target, body, "Authorization", "Bearer "+adminToken)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode parses a JSON answer into a generic value.
func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer is not a JSON object: %v\n%s", err, rec.Body.String())
	}
	return v
}

// errorOf returns the "error" of an error answer, failing when the shape is wrong.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer Content-Type = %q", ct)
	}
	v := decode(t, rec)
	msg, ok := v["error"].(string)
	if !ok || msg == "" || len(v) != 1 {
		t.Fatalf(`error answer is not {"error": "..."}: %s`, rec.Body.String())
	}
	return msg
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// paddedJSON is a JSON object of exactly n bytes: prefix (members with a trailing
// comma, or "") and a padding string.
func paddedJSON(prefix string, n int) []byte {
	head := `{` + prefix + `"pad":"`
	tail := `"}`
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail)
}
