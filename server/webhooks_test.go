package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

func sign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestSignaturesTableMatchesFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fixtures", "waba", "*.json"))
	if err != nil || len(files) != len(fixtureSignatures) {
		t.Fatalf("fixtures %v (%v) vs %d signatures", files, err, len(fixtureSignatures))
	}
	for name, sig := range fixtureSignatures {
		if got := sign(fixture(t, name)); got != sig {
			t.Errorf("%s: fixture is not byte-exact: signature %s, SIGNATURES.md says %s", name, got, sig)
		}
	}
}

func TestWABAHandshake(t *testing.T) {
	q := func(mode, token, challenge string) string {
		return "/webhooks/waba?hub.mode=" + mode + "&hub.verify_token=" + token + "&hub.challenge=" + challenge
	}
	tests := []struct {
		name     string
		unset    bool
		target   string
		status   int
		body     string
		errorHas string
	}{
		{"right", false, q("subscribe", verifyToken, "1158201444"), 200, "1158201444", ""},
		{"wrong token", false, q("subscribe", "nope", "1158201444"), 403, "", "verification failed"},
		{"wrong mode", false, q("unsubscribe", verifyToken, "1158201444"), 403, "", "verification failed"},
		{"no challenge", false, q("subscribe", verifyToken, ""), 403, "", "verification failed"},
		{"no query", false, "/webhooks/waba", 403, "", "verification failed"},
		{"unset", true, q("subscribe", verifyToken, "1158201444"), 503, "", "WABA_VERIFY_TOKEN"},
		{"unset, empty token matches nothing", true, q("subscribe", "", "1"), 503, "", "WABA_VERIFY_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tt.unset {
					c.VerifyToken = ""
				}
			})
			rec := e.do("GET", tt.target, nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if rec.Body.String() != tt.body || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
					t.Errorf("body %q (%s), want %q as text/plain", rec.Body, rec.Header().Get("Content-Type"), tt.body)
				}
				return
			}
			if msg := errorOf(t, rec); !strings.Contains(msg, tt.errorHas) || strings.Contains(msg, verifyToken) {
				t.Errorf("error %q should contain %q and no token", msg, tt.errorHas)
			}
		})
	}
}

func TestWABAWebhook(t *testing.T) {
	text := fixture(t, "waba/text.json")
	batch := fixture(t, "waba/batch.json")
	flipped := bytes.Clone(text)
	flipped[len(flipped)-3] ^= 1
	unknown := []byte(`{"object":"page","entry":[{"id":"1","changes":[{"field":"feed","value":{"x":1}}]}]}`)
	tests := []struct {
		name       string
		unset      bool
		body       []byte
		sig        string // "" = no header
		status     int
		received   int
		errorHas   string
		wantStored int
	}{
		{"missing signature", false, text, "", 401, 0, "missing X-Hub-Signature-256", 0},
		{"wrong signature", false, text, "sha256=" + strings.Repeat("ab", 32), 401, 0, "bad X-Hub-Signature-256", 0},
		{"signature of another body", false, text, fixtureSignatures["waba/batch.json"], 401, 0, "bad X-Hub-Signature-256", 0},
		{"one byte changed", false, flipped, fixtureSignatures["waba/text.json"], 401, 0, "bad X-Hub-Signature-256", 0},
		{"no sha256= prefix", false, text, strings.TrimPrefix(fixtureSignatures["waba/text.json"], "sha256="), 401, 0, "bad X-Hub-Signature-256", 0},
		{"bad JSON, well signed", false, []byte(`{"entry":[`), sign([]byte(`{"entry":[`)), 400, 0, "bad JSON", 0},
		{"not understood, well signed", false, unknown, sign(unknown), 200, 0, "", 0},
		{"batch", false, batch, fixtureSignatures["waba/batch.json"], 200, 4, "", 4},
		{"unset APP_SECRET", true, text, fixtureSignatures["waba/text.json"], 503, 0, "APP_SECRET", 0},
	}
	for name, sig := range fixtureSignatures {
		n := 1
		if name == "waba/batch.json" {
			n = 4
		}
		tests = append(tests, struct {
			name       string
			unset      bool
			body       []byte
			sig        string
			status     int
			received   int
			errorHas   string
			wantStored int
		}{"fixture " + name, false, fixture(t, name), sig, 200, n, "", n})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tt.unset {
					c.AppSecret = ""
				}
			})
			h := []string{"Content-Type", "application/json"}
			if tt.sig != "" {
				h = append(h, "X-Hub-Signature-256", tt.sig)
			}
			rec := e.do("POST", "/webhooks/waba", tt.body, h...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				v := decode(t, rec)
				if v["received"] != float64(tt.received) || v["duplicates"] != float64(0) {
					t.Errorf("answer %s, want received %d", rec.Body, tt.received)
				}
			} else if msg := errorOf(t, rec); !strings.Contains(msg, tt.errorHas) {
				t.Errorf("error %q should contain %q", msg, tt.errorHas)
			}
			if got := e.inbox.count(); got != tt.wantStored {
				t.Errorf("stored %d events, want %d", got, tt.wantStored)
			}
			rejected := testutil.ToFloat64(e.m.EventsIn.WithLabelValues("waba", "", "rejected"))
			if want := float64(boolInt(tt.status != 200)); rejected != want {
				t.Errorf("rejected counter %v, want %v", rejected, want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// webhookCase is how to send a valid request to one webhook.
type webhookCase struct {
	path    string
	source  string
	auth    []string // headers of valid credentials
	fixture string
}

func webhookCases(t *testing.T) []webhookCase {
	return []webhookCase{
		{"/webhooks/waba", "waba", nil, "waba/text.json"},
		{"/webhooks/okdesk", "okdesk", []string{"Authorization", basic(okdeskUser, okdeskPass)}, "okdesk/new_ticket.json"},
		{"/webhooks/onec", "onec", []string{"Authorization", "Bearer " + onecToken}, "onec/payment_paid.json"},
		{"/webhooks/telegram", "telegram", []string{"X-Telegram-Bot-Api-Secret-Token", tgSecret}, "telegram/message.json"},
	}
}

// headersFor returns the credentials for body (WhatsApp signs the body).
func (w webhookCase) headersFor(body []byte) []string {
	if w.source == "waba" {
		return []string{"X-Hub-Signature-256", sign(body)}
	}
	return w.auth
}

func TestOkdeskWebhook(t *testing.T) {
	const challenge = `Basic realm="fixit okdesk", charset="UTF-8"`
	good := basic(okdeskUser, okdeskPass)
	tests := []struct {
		name      string
		unset     string // "user", "pass" or ""
		auth      string
		body      []byte
		status    int
		errorHas  string
		challenge bool
	}{
		{"new_ticket", "", good, fixture(t, "okdesk/new_ticket.json"), 200, "", false},
		{"new_ticket_status", "", good, fixture(t, "okdesk/new_ticket_status.json"), 200, "", false},
		{"new_comment", "", good, fixture(t, "okdesk/new_comment.json"), 200, "", false},
		{"missing auth", "", "", fixture(t, "okdesk/new_ticket.json"), 401, "missing Basic credentials", true},
		{"wrong password", "", basic(okdeskUser, "nope"), fixture(t, "okdesk/new_ticket.json"), 401, "invalid Basic credentials", true},
		{"wrong user", "", basic("nope", okdeskPass), fixture(t, "okdesk/new_ticket.json"), 401, "invalid Basic credentials", true},
		{"bearer instead of basic", "", "Bearer " + okdeskPass, fixture(t, "okdesk/new_ticket.json"), 401, "invalid Basic credentials", true},
		{"bad JSON", "", good, []byte(`{"event": `), 400, "bad JSON", false},
		{"not an object", "", good, []byte(`[1,2]`), 400, "bad JSON", false},
		{"missing event_type", "", good, []byte(`{"event":{},"issue":{"id":"1"}}`), 400, "event.event_type", false},
		{"unset user", "user", good, fixture(t, "okdesk/new_ticket.json"), 503, "OKDESK_USER and OKDESK_PASS", false},
		{"unset pass", "pass", good, fixture(t, "okdesk/new_ticket.json"), 503, "OKDESK_USER and OKDESK_PASS", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				switch tt.unset {
				case "user":
					c.OkdeskUser = ""
				case "pass":
					c.OkdeskPass = ""
				}
			})
			var h []string
			if tt.auth != "" {
				h = []string{"Authorization", tt.auth}
			}
			rec := e.do("POST", "/webhooks/okdesk", tt.body, h...)
			checkWebhookAnswer(t, e, rec, tt.status, tt.errorHas, 1)
			if got := rec.Header().Get("WWW-Authenticate"); (got == challenge) != tt.challenge {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
}

func TestOneCWebhook(t *testing.T) {
	const challenge = `Bearer realm="fixit onec"`
	good := "Bearer " + onecToken
	tests := []struct {
		name      string
		unset     bool
		auth      string
		body      []byte
		status    int
		errorHas  string
		challenge bool
	}{
		{"payment", false, good, fixture(t, "onec/payment_paid.json"), 200, "", false},
		{"lower-case scheme", false, "bearer " + onecToken, fixture(t, "onec/payment_paid.json"), 200, "", false},
		{"missing auth", false, "", fixture(t, "onec/payment_paid.json"), 401, "missing bearer token", true},
		{"wrong token", false, "Bearer nope", fixture(t, "onec/payment_paid.json"), 401, "invalid bearer token", true},
		{"basic instead of bearer", false, basic("x", onecToken), fixture(t, "onec/payment_paid.json"), 401, "invalid bearer token", true},
		{"bad JSON", false, good, []byte(`{"id": 1,`), 400, "bad JSON: ", false},
		{"missing status", false, good, []byte(`{"id":"e1","event":"payment"}`), 400, `missing required field "status"`, false},
		{"missing id", false, good, []byte(`{"event":"payment","status":"paid"}`), 400, `"id"`, false},
		{"unknown payment status", false, good, []byte(`{"id":"e1","event":"payment","status":"maybe"}`), 400, `"status"`, false},
		{"unset", true, good, fixture(t, "onec/payment_paid.json"), 503, "ONEC_TOKEN", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tt.unset {
					c.OneCToken = ""
				}
			})
			var h []string
			if tt.auth != "" {
				h = []string{"Authorization", tt.auth}
			}
			rec := e.do("POST", "/webhooks/onec", tt.body, h...)
			checkWebhookAnswer(t, e, rec, tt.status, tt.errorHas, 1)
			if tt.errorHas == "bad JSON: " && !strings.HasPrefix(errorOf(t, rec), "bad JSON: ") {
				t.Errorf("bad JSON answer must start with %q", "bad JSON: ")
			}
			if got := rec.Header().Get("WWW-Authenticate"); (got == challenge) != tt.challenge {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
}

func TestTelegramWebhook(t *testing.T) {
	tests := []struct {
		name     string
		unset    bool
		secret   string
		body     []byte
		status   int
		errorHas string
		events   int
	}{
		{"message", false, tgSecret, fixture(t, "telegram/message.json"), 200, "", 1},
		{"callback", false, tgSecret, fixture(t, "telegram/callback_query.json"), 200, "", 1},
		{"update without content", false, tgSecret, []byte(`{"update_id": 5}`), 200, "", 0},
		{"missing secret", false, "", fixture(t, "telegram/message.json"), 401, "missing X-Telegram-Bot-Api-Secret-Token", 0},
		{"wrong secret", false, "nope", fixture(t, "telegram/message.json"), 401, "bad X-Telegram-Bot-Api-Secret-Token", 0},
		{"bad JSON", false, tgSecret, []byte(`{"update_id":`), 400, "bad JSON", 0},
		{"no update_id", false, tgSecret, []byte(`{"message":{}}`), 400, "update_id", 0},
		{"unset", true, tgSecret, fixture(t, "telegram/message.json"), 503, "TELEGRAM_SECRET_TOKEN", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tt.unset {
					c.TelegramSecret = ""
				}
			})
			var h []string
			if tt.secret != "" {
				h = []string{"X-Telegram-Bot-Api-Secret-Token", tt.secret}
			}
			rec := e.do("POST", "/webhooks/telegram", tt.body, h...)
			checkWebhookAnswer(t, e, rec, tt.status, tt.errorHas, tt.events)
		})
	}
}

// checkWebhookAnswer checks status, the answer's shape and what reached the inbox.
func checkWebhookAnswer(t *testing.T, e *env, rec *httptest.ResponseRecorder, status int, errorHas string, events int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if status == 200 {
		v := decode(t, rec)
		if v["received"] != float64(events) || v["duplicates"] != float64(0) {
			t.Errorf("answer %s, want %d received", rec.Body, events)
		}
		if e.inbox.count() != events {
			t.Errorf("stored %d events, want %d", e.inbox.count(), events)
		}
		return
	}
	if msg := errorOf(t, rec); !strings.Contains(msg, errorHas) {
		t.Errorf("error %q should contain %q", msg, errorHas)
	}
	if e.inbox.count() != 0 {
		t.Errorf("a refused request stored %d events", e.inbox.count())
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	for _, w := range webhookCases(t) {
		t.Run(w.source, func(t *testing.T) {
			e := newEnv(t)
			atLimit := paddedJSON(`"object":"x",`, int(DefaultMaxBody))
			over := append(bytes.Clone(atLimit), ' ')
			if len(atLimit) != 3145728 || len(over) != 3145729 {
				t.Fatalf("sizes %d, %d", len(atLimit), len(over))
			}
			// Exactly the limit passes the limiter: whatever the parser then says, it is not 413.
			rec := e.do("POST", w.path, atLimit, w.headersFor(atLimit)...)
			if rec.Code == http.StatusRequestEntityTooLarge || rec.Code >= 500 {
				t.Errorf("body of exactly MaxBody: status %d: %s", rec.Code, rec.Body)
			}
			if w.source == "waba" && rec.Code != 200 {
				t.Errorf("well-signed padded body at the limit: status %d", rec.Code)
			}
			for _, declared := range []bool{true, false} {
				req := httptest.NewRequest("POST", w.path, bytes.NewReader(over))
				if !declared {
					req.ContentLength = -1 // streamed: only the reader's limit can catch it
				}
				hs := w.headersFor(over)
				for i := 0; i+1 < len(hs); i += 2 {
					req.Header.Set(hs[i], hs[i+1])
				}
				rec := httptest.NewRecorder()
				e.srv.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusRequestEntityTooLarge {
					t.Fatalf("MaxBody+1 (declared length %v): status %d", declared, rec.Code)
				}
				if msg := errorOf(t, rec); !strings.Contains(msg, "3145728") {
					t.Errorf("413 message %q should name the limit", msg)
				}
			}
		})
	}
}

func TestWebhookDuplicateDelivery(t *testing.T) {
	for _, w := range webhookCases(t) {
		t.Run(w.source, func(t *testing.T) {
			e := newEnv(t)
			body := fixture(t, w.fixture)
			for i, wantDup := range []float64{0, 1} {
				rec := e.do("POST", w.path, body, w.headersFor(body)...)
				if rec.Code != 200 {
					t.Fatalf("delivery %d: status %d: %s", i+1, rec.Code, rec.Body)
				}
				if v := decode(t, rec); v["received"] != float64(1) || v["duplicates"] != wantDup {
					t.Errorf("delivery %d: %s", i+1, rec.Body)
				}
			}
			if e.inbox.count() != 1 {
				t.Errorf("stored %d events, want 1", e.inbox.count())
			}
			if got := testutil.ToFloat64(e.m.DedupeHits.WithLabelValues(w.source)); got != 1 {
				t.Errorf("dedupe hits %v, want 1", got)
			}
		})
	}
}

// TestWebhookEndToEndSQLite stores through the real store: duplicates are dropped by
// the database, not by a fake.
func TestWebhookEndToEndSQLite(t *testing.T) {
	var e *env
	e = newEnv(t, func(c *Config) {
		c.Inbox = InboxFunc(func(ctx context.Context, evs []event.Event) ([]store.AppendResult, error) {
			return e.st.AppendEvents(ctx, evs)
		})
	})
	post := func(w webhookCase, name string) map[string]any {
		body := fixture(t, name)
		rec := e.do("POST", w.path, body, w.headersFor(body)...)
		if rec.Code != 200 {
			t.Fatalf("%s: status %d: %s", name, rec.Code, rec.Body)
		}
		return decode(t, rec)
	}
	cases := webhookCases(t)
	for round := 0; round < 2; round++ {
		v := post(cases[0], "waba/batch.json")
		if v["received"] != float64(4) || v["duplicates"] != float64(4*round) {
			t.Errorf("batch round %d: %v", round, v)
		}
		for _, w := range cases[1:] {
			if v := post(w, w.fixture); v["duplicates"] != float64(round) {
				t.Errorf("%s round %d: %v", w.source, round, v)
			}
		}
	}
	evs, next, err := e.st.ListEvents(context.Background(), store.EventFilter{}, store.Page{Limit: 100})
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	if len(evs) != 7 {
		t.Errorf("stored %d events, want 7 (4 + 3, each once)", len(evs))
	}
	if got := testutil.ToFloat64(e.m.EventsIn.WithLabelValues("waba", "waba.message", "duplicate")); got != 3 {
		t.Errorf("waba.message duplicates counted %v, want 3", got)
	}
}

func TestWebhookStoreFailure(t *testing.T) {
	for _, w := range webhookCases(t) {
		t.Run(w.source, func(t *testing.T) {
			e := newEnv(t)
			e.inbox.fail(errors.New("disk I/O error"))
			body := fixture(t, w.fixture)
			rec := e.do("POST", w.path, body, w.headersFor(body)...)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503 so that the sender retries", rec.Code)
			}
			if msg := errorOf(t, rec); strings.Contains(msg, "disk") {
				t.Errorf("the store's error leaked into the answer: %q", msg)
			}
			if !strings.Contains(e.log.String(), "disk I/O error") {
				t.Error("the store failure was not logged")
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path  string
		allow string
	}{
		{"/webhooks/waba", "GET, POST"},
		{"/webhooks/okdesk", "POST"},
		{"/webhooks/onec", "POST"},
		{"/webhooks/telegram", "POST"},
		{"/api/v1/flows", "GET"},
		{"/api/v1/events", "GET, POST"},
		{"/api/v1/dialogs/7", "GET"},
		{"/healthz", "GET"},
	}
	for _, tt := range tests {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
			if strings.Contains(tt.allow, m) {
				continue
			}
			rec := e.do(m, tt.path, nil)
			if isAdminPath(tt.path) {
				// Only a caller with a token learns what the admin API has.
				if rec.Code != http.StatusUnauthorized || rec.Header().Get("Allow") != "" {
					t.Errorf("%s %s without a token: status %d, Allow %q; want 401 and no Allow", m, tt.path, rec.Code, rec.Header().Get("Allow"))
				}
				rec = e.admin(m, tt.path, nil)
			}
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tt.allow {
				t.Errorf("%s %s: status %d, Allow %q; want 405 with %q", m, tt.path, rec.Code, rec.Header().Get("Allow"), tt.allow)
				continue
			}
			if m != "HEAD" {
				if msg := errorOf(t, rec); !strings.Contains(msg, "not allowed") {
					t.Errorf("%s %s: %q", m, tt.path, msg)
				}
			}
		}
	}
	if got := testutil.ToFloat64(e.m.Requests.WithLabelValues("okdesk", "405")); got != 6 {
		t.Errorf("okdesk 405s counted %v, want 6", got)
	}
}

func TestNoRoute(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/x", "/webhooks", "/webhooks/waba/", "/api/v1/nope", "/healthz/extra"} {
		rec := e.do("GET", target+"?secret=1", nil)
		if isAdminPath(target) {
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("GET %s without a token: status %d, want 401", target, rec.Code)
			}
			rec = e.admin("GET", target+"?secret=1", nil)
		}
		if rec.Code != 404 {
			t.Errorf("GET %s: status %d", target, rec.Code)
			continue
		}
		if msg := errorOf(t, rec); msg != "no route GET "+target {
			t.Errorf("GET %s: %q", target, msg)
		}
	}
}

// TestSignedRandomBodiesNever5xx: whatever a well-signed body holds, the answer is
// 200 or 400, never a server error.
func TestSignedRandomBodiesNever5xx(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := [][]byte{fixture(t, "waba/batch.json"), fixture(t, "waba/status_failed.json"), fixture(t, "waba/location.json")}
	for i := 0; i < 400; i++ {
		var body []byte
		switch i % 3 {
		case 0: // random bytes
			body = make([]byte, rng.IntN(200))
			for j := range body {
				body[j] = byte(rng.IntN(256))
			}
		case 1: // a fixture with bytes replaced
			body = bytes.Clone(seeds[rng.IntN(len(seeds))])
			for k := 0; k < 1+rng.IntN(4); k++ {
				body[rng.IntN(len(body))] = `{}[]":,0a-. `[rng.IntN(12)]
			}
		default: // a fixture cut short
			s := seeds[rng.IntN(len(seeds))]
			body = s[:rng.IntN(len(s))]
		}
		rec := e.do("POST", "/webhooks/waba", body, "X-Hub-Signature-256", sign(body))
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("body %q: status %d: %s", body, rec.Code, rec.Body)
		}
	}
}
