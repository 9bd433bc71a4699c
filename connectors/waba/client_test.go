package waba

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/connectors"
)

const (
	testToken   = "EAAG-secret-token-0123456789"
	testPhoneID = "498761234560011"
	testWAID    = "79161234567"
)

var testNow = time.Date(2025, 11, 29, 12, 0, 0, 0, time.UTC)

// graphServer is a fake Graph API: it checks every request like Meta would and
// answers with the status, headers and body of the test case.
type graphServer struct {
	t      *testing.T
	calls  atomic.Int32
	status int
	header map[string]string
	body   string
	got    atomic.Value // last request body ([]byte)
}

func (g *graphServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/v21.0/"+testPhoneID+"/messages" {
		g.t.Errorf("request %s %s, want POST /v21.0/%s/messages", r.Method, r.URL.Path, testPhoneID)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		g.t.Errorf("Authorization = %q", got)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		g.t.Errorf("Content-Type = %q", ct)
	}
	b, _ := io.ReadAll(r.Body)
	g.got.Store(b)
	for k, v := range g.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(g.status)
	_, _ = io.WriteString(w, g.body)
}

func newTestClient(t *testing.T, g *graphServer, token string) *Client {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return New(Config{BaseURL: srv.URL + "/v21.0/", AccessToken: token, PhoneNumberIDs: []string{testPhoneID}, HTTP: srv.Client()})
}

func sendReq(params map[string]any, lastInbound time.Time) connectors.Request {
	return connectors.Request{
		ID: "outbox-1", Kind: "send", Params: params, Now: testNow,
		Dialog: dialog.Dialog{ID: 1, Channel: "waba", ContactID: testWAID, Phone: testWAID}, LastInboundAt: lastInbound,
	}
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body\n got %s\nwant %s", got, want)
	}
}

const sentOK = `{"messaging_product":"whatsapp","contacts":[{"input":"79161234567","wa_id":"79161234567"}],"messages":[{"id":"wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA="}]}`

func TestClientSend(t *testing.T) {
	open := testNow.Add(-time.Hour)
	fallback := map[string]any{"name": "visit_reminder", "language": "ru", "params": []any{"Анна", 1542.0}}
	cases := []struct {
		name     string
		params   map[string]any
		inbound  time.Time
		answer   string
		wantBody string
		wantData map[string]any
	}{
		{
			name:     "text",
			params:   map[string]any{"text": "Мастер приедет завтра"},
			inbound:  open,
			answer:   sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Мастер приедет завтра","preview_url":false}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "text"},
		},
		{
			name:     "null params are absent",
			params:   map[string]any{"text": "Готово", "buttons": nil, "list": nil, "template": nil, "fallback": nil},
			inbound:  open,
			answer:   sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Готово","preview_url":false}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "text"},
		},
		{
			name:     "accepted without a readable body is still sent",
			params:   map[string]any{"text": "Готово"},
			inbound:  open,
			answer:   `<html>ok</html>`,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Готово","preview_url":false}}`,
			wantData: map[string]any{"message_id": "", "via": "text"},
		},
		{
			name: "reply buttons",
			params: map[string]any{"text": "Подтвердите адрес", "footer": "fixit", "buttons": []any{
				map[string]any{"id": "yes", "title": "Да, верно"},
				map[string]any{"id": 2.0, "title": "Нет"},
				"Позвонить",
			}},
			inbound: open,
			answer:  `{"messaging_product":"whatsapp","contacts":[{"input":"79161234567","wa_id":"79161234567"}],"messages":[{"id":"wamid.B1","message_status":"accepted"}]}`,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"interactive",
				"interactive":{"type":"button","body":{"text":"Подтвердите адрес"},"footer":{"text":"fixit"},
				"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Да, верно"}},
				{"type":"reply","reply":{"id":"2","title":"Нет"}},{"type":"reply","reply":{"id":"Позвонить","title":"Позвонить"}}]}}}`,
			wantData: map[string]any{"message_id": "wamid.B1", "message_status": "accepted", "via": "buttons"},
		},
		{
			name: "list",
			params: map[string]any{"text": "Когда удобно?", "header": "Запись", "list": map[string]any{
				"button": "Выбрать время", "section": "Слоты",
				"rows": []map[string]any{
					{"id": "am", "title": "Утром", "description": "09:00–12:00"},
					{"id": "pm", "title": "Днём"},
				},
			}},
			inbound: open,
			answer:  sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"interactive",
				"interactive":{"type":"list","header":{"type":"text","text":"Запись"},"body":{"text":"Когда удобно?"},
				"action":{"button":"Выбрать время","sections":[{"title":"Слоты","rows":[
				{"id":"am","title":"Утром","description":"09:00–12:00"},{"id":"pm","title":"Днём"}]}]}}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "list"},
		},
		{
			name:    "template outside the window",
			params:  map[string]any{"template": map[string]any{"name": "invoice_ready", "language": map[string]any{"code": "ru"}, "params": []any{"Анна", "12 500 ₽"}}},
			inbound: time.Time{},
			answer:  sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"template",
				"template":{"name":"invoice_ready","language":{"code":"ru"},"components":[{"type":"body","parameters":[
				{"type":"text","text":"Анна"},{"type":"text","text":"12 500 ₽"}]}]}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "template"},
		},
		{
			name:     "template without params",
			params:   map[string]any{"template": map[string]any{"name": "hello_world", "language": "en_US"}},
			answer:   sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "template"},
		},
		{
			name:    "window closed exactly at 24h: fallback template",
			params:  map[string]any{"text": "Напоминаем о визите", "fallback": fallback},
			inbound: testNow.Add(-24 * time.Hour),
			answer:  sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"template",
				"template":{"name":"visit_reminder","language":{"code":"ru"},"components":[{"type":"body","parameters":[
				{"type":"text","text":"Анна"},{"type":"text","text":"1542"}]}]}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "fallback_template"},
		},
		{
			name:     "window open just before 24h: fallback unused",
			params:   map[string]any{"text": "Напоминаем о визите", "fallback": fallback},
			inbound:  testNow.Add(-24*time.Hour + time.Second),
			answer:   sentOK,
			wantBody: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text","text":{"body":"Напоминаем о визите","preview_url":false}}`,
			wantData: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTRCMEM4RjA2NzY4RTlBNAA=", "via": "text"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &graphServer{t: t, status: http.StatusOK, body: c.answer}
			res, err := newTestClient(t, g, testToken).Execute(context.Background(), sendReq(c.params, c.inbound))
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if g.calls.Load() != 1 {
				t.Fatalf("%d calls to Meta, want 1", g.calls.Load())
			}
			jsonEqual(t, g.got.Load().([]byte), c.wantBody)
			c.wantData["from"] = testPhoneID // no business number: the first configured
			if res.DryRun || !reflect.DeepEqual(res.Data, c.wantData) {
				t.Errorf("result %+v, want data %v", res, c.wantData)
			}
		})
	}
}

func TestClientMarkRead(t *testing.T) {
	g := &graphServer{t: t, status: http.StatusOK, body: `{"success":true}`}
	c := newTestClient(t, g, testToken)
	req := connectors.Request{ID: "outbox-2", Kind: KindMarkRead, Now: testNow,
		Params: map[string]any{"message_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRUIw000000000000000000000001AA=="},
		Dialog: dialog.Dialog{ID: 1, Channel: "waba", ContactID: testWAID}}
	res, err := c.Execute(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, g.got.Load().([]byte), `{"messaging_product":"whatsapp","status":"read","message_id":"wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRUIw000000000000000000000001AA=="}`)
	if res.Data["message_id"] != req.Params["message_id"] {
		t.Errorf("result %+v", res)
	}
	// Window rules do not apply to marking as read; a missing id is a param error.
	req.Params = map[string]any{}
	if _, err := c.Execute(context.Background(), req); code(err) != connectors.CodeBadParams {
		t.Errorf("missing message_id: %v", err)
	}
}

func code(err error) string {
	var e *connectors.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestClientGraphErrors(t *testing.T) {
	text := map[string]any{"text": "Мастер приедет завтра"}
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		code       string
		apiCode    int
		retry      bool
		retryAfter time.Duration
	}{
		{"window closed", 400, nil,
			`{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"AbCdEf123"}}`,
			connectors.CodeWindowClosed, 131047, false, 0},
		{"undeliverable", 400, nil,
			`{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"error_data":{"messaging_product":"whatsapp","details":"Message Undeliverable."},"fbtrace_id":"AbCdEf124"}}`,
			connectors.CodeUndeliverable, 131026, false, 0},
		{"throughput with Retry-After", 400, map[string]string{"Retry-After": "7"},
			`{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"AbCdEf125"}}`,
			connectors.CodeRateLimited, 130429, true, 7 * time.Second},
		{"pair rate limit", 400, nil,
			`{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"fbtrace_id":"AbCdEf126"}}`,
			connectors.CodeRateLimited, 131056, true, 0},
		{"app rate limit", 403, nil,
			`{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"is_transient":true,"fbtrace_id":"AbCdEf127"}}`,
			connectors.CodeRateLimited, 4, true, 0},
		{"waba rate limit", 400, nil,
			`{"error":{"message":"(#80007) Rate limit issues","type":"OAuthException","code":80007,"fbtrace_id":"AbCdEf128"}}`,
			connectors.CodeRateLimited, 80007, true, 0},
		{"expired token", 401, nil,
			`{"error":{"message":"Error validating access token: Session has expired on Friday, 26-Apr-24 06:00:00 PDT.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"ACEyrTehk6IAd0lm05Ixogh"}}`,
			connectors.CodeAuth, 190, false, 0},
		{"invalid parameter", 400, nil,
			`{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_data":{"messaging_product":"whatsapp","details":"Param text['body'] is required"},"fbtrace_id":"AbCdEf129"}}`,
			connectors.CodeBadParams, 100, false, 0},
		{"template missing", 404, nil,
			`{"error":{"message":"(#132001) Template name does not exist in the translation","type":"OAuthException","code":132001,"error_data":"template name (visit) does not exist in ru","fbtrace_id":"AbCdEf130"}}`,
			connectors.CodeNotFound, 132001, false, 0},
		{"other 4xx", 400, nil,
			`{"error":{"message":"(#131009) Parameter value is not valid","type":"OAuthException","code":131009,"fbtrace_id":"AbCdEf131"}}`,
			connectors.CodeBadRequest, 131009, false, 0},
		{"transient unknown error", 400, nil,
			`{"error":{"message":"(#131000) Something went wrong","type":"OAuthException","code":131000,"is_transient":true,"fbtrace_id":"AbCdEf132"}}`,
			connectors.CodeBadRequest, 131000, true, 0},
		{"500 with graph body", 500, nil,
			`{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"is_transient":true,"fbtrace_id":"AbCdEf133"}}`,
			connectors.CodeServer, 1, true, 0},
		{"502 from a proxy", 502, nil, `<html><body>Bad Gateway</body></html>`,
			connectors.CodeServer, 0, true, 0},
		{"429 with HTTP-date Retry-After", 429, map[string]string{"Retry-After": testNow.Add(90 * time.Second).Format(time.RFC1123)}, ``,
			connectors.CodeRateLimited, 0, true, 90 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &graphServer{t: t, status: c.status, header: c.header, body: c.body}
			res, err := newTestClient(t, g, testToken).Execute(context.Background(), sendReq(text, testNow.Add(-time.Minute)))
			var e *connectors.Error
			if !errors.As(err, &e) {
				t.Fatalf("Execute = %+v, %v; want *connectors.Error", res, err)
			}
			if e.Connector != "waba" || e.Code != c.code || e.APICode != c.apiCode || e.Status != c.status ||
				e.Retryable != c.retry || e.RetryAfter != c.retryAfter {
				t.Errorf("got %+v\nwant code %s api %d status %d retry %v after %v", e, c.code, c.apiCode, c.status, c.retry, c.retryAfter)
			}
			if strings.Contains(e.Error(), testToken) {
				t.Errorf("error leaks the token: %v", e)
			}
		})
	}
}

func TestClientErrorDetails(t *testing.T) {
	g := &graphServer{t: t, status: 401,
		body: `{"error":{"message":"Malformed access token ` + testToken + `","type":"OAuthException","code":190,"error_subcode":463,"error_data":{"details":"token ` + testToken + ` rejected"},"fbtrace_id":"AXsgnV2Cm3ZMGF3dF_cfYIn"}}`}
	_, err := newTestClient(t, g, testToken).Execute(context.Background(), sendReq(map[string]any{"text": "x"}, testNow))
	msg := err.Error()
	for _, want := range []string{"waba: auth (http 401) (code 190)", "Malformed access token [redacted]", "token [redacted] rejected", "subcode 463", "AXsgnV2Cm3ZMGF3dF_cfYIn"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, testToken) {
		t.Errorf("error leaks the token: %q", msg)
	}
}

func TestClientNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	c := New(Config{BaseURL: url, AccessToken: testToken, PhoneNumberIDs: []string{testPhoneID}})
	_, err := c.Execute(context.Background(), sendReq(map[string]any{"text": "x"}, testNow))
	var e *connectors.Error
	if !errors.As(err, &e) || e.Code != connectors.CodeNetwork || !e.Retryable {
		t.Fatalf("got %v, want a retryable network error", err)
	}
	if strings.Contains(e.Error(), testToken) {
		t.Errorf("error leaks the token: %v", e)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := &graphServer{t: t, status: 200, body: sentOK}
	if _, err := newTestClient(t, g, testToken).Execute(ctx, sendReq(map[string]any{"text": "x"}, testNow)); code(err) != connectors.CodeNetwork {
		t.Errorf("canceled context: %v", err)
	}
}

// TestClientRefusesLocally covers requests that must fail before Meta is called.
func TestClientRefusesLocally(t *testing.T) {
	open := testNow.Add(-time.Hour)
	buttons := func(n int) []any {
		var out []any
		for i := range n {
			out = append(out, map[string]any{"id": string(rune('a' + i)), "title": "Кнопка"})
		}
		return out
	}
	rows := func(n int) []any {
		var out []any
		for i := range n {
			out = append(out, map[string]any{"id": string(rune('a' + i)), "title": "Строка"})
		}
		return out
	}
	cases := []struct {
		name    string
		params  map[string]any
		inbound time.Time
		code    string
		msg     string
	}{
		{"window never opened", map[string]any{"text": "Здравствуйте"}, time.Time{}, connectors.CodeWindowClosed, "window is closed"},
		{"window closed", map[string]any{"text": "Здравствуйте"}, testNow.Add(-25 * time.Hour), connectors.CodeWindowClosed, "2025-11-28T11:00:00Z"},
		{"buttons outside the window", map[string]any{"text": "?", "buttons": buttons(2)}, testNow.Add(-48 * time.Hour), connectors.CodeWindowClosed, "fallback"},
		{"bad params win over a closed window", map[string]any{"text": "?", "buttons": buttons(4)}, time.Time{}, connectors.CodeBadParams, "buttons"},
		{"four buttons", map[string]any{"text": "?", "buttons": buttons(4)}, open, connectors.CodeBadParams, "1 to 3 buttons, got 4"},
		{"no buttons", map[string]any{"text": "?", "buttons": []any{}}, open, connectors.CodeBadParams, "got 0"},
		{"duplicate button ids", map[string]any{"text": "?", "buttons": []any{"Да", "Да"}}, open, connectors.CodeBadParams, "used twice"},
		{"eleven rows", map[string]any{"text": "?", "list": map[string]any{"button": "Выбрать", "rows": rows(11)}}, open, connectors.CodeBadParams, "1 to 10 rows, got 11"},
		{"list without button", map[string]any{"text": "?", "list": map[string]any{"rows": rows(2)}}, open, connectors.CodeBadParams, "list.button is required"},
		{"list not an object", map[string]any{"text": "?", "list": "a,b"}, open, connectors.CodeBadParams, "list"},
		{"buttons and list", map[string]any{"text": "?", "buttons": buttons(1), "list": map[string]any{}}, open, connectors.CodeBadParams, "buttons and list"},
		{"no text", map[string]any{}, open, connectors.CodeBadParams, "text is required"},
		{"row id too long", map[string]any{"text": "?", "list": map[string]any{"button": "b", "rows": []any{map[string]any{"id": strings.Repeat("1", 201), "title": "a"}}}}, open, connectors.CodeBadParams, "list.rows[0].id: at most 200 characters"},
		{"template without language", map[string]any{"template": map[string]any{"name": "hello"}}, open, connectors.CodeBadParams, "template.language is required"},
		{"template without name", map[string]any{"template": map[string]any{"language": "ru"}}, open, connectors.CodeBadParams, "template.name is required"},
		{"bad fallback", map[string]any{"text": "x", "fallback": "hello"}, time.Time{}, connectors.CodeBadParams, "fallback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &graphServer{t: t, status: 200, body: sentOK}
			_, err := newTestClient(t, g, testToken).Execute(context.Background(), sendReq(c.params, c.inbound))
			var e *connectors.Error
			if !errors.As(err, &e) || e.Code != c.code || e.Retryable || !strings.Contains(e.Message, c.msg) {
				t.Errorf("got %v, want %s mentioning %q", err, c.code, c.msg)
			}
			if c.code == connectors.CodeWindowClosed && e != nil && e.APICode != 131047 {
				t.Errorf("APICode = %d, want 131047", e.APICode)
			}
			if n := g.calls.Load(); n != 0 {
				t.Errorf("Meta was called %d times", n)
			}
		})
	}

	// Limits are in characters: 20 Cyrillic letters (40 bytes) are a valid title.
	g := &graphServer{t: t, status: 200, body: sentOK}
	params := map[string]any{"text": "?", "buttons": []any{strings.Repeat("ж", 20)}}
	if _, err := newTestClient(t, g, testToken).Execute(context.Background(), sendReq(params, open)); err != nil {
		t.Errorf("20-rune title rejected: %v", err)
	}
	req := sendReq(map[string]any{"text": "x"}, open)
	req.Dialog.ContactID, req.Dialog.Phone = "", ""
	if _, err := newTestClient(t, g, testToken).Execute(context.Background(), req); code(err) != connectors.CodeBadParams {
		t.Errorf("dialog without contact: %v", err)
	}
}

// TestSendCutsToLimits: a value a template made longer than WhatsApp takes is
// cut (in characters, never inside one), sent, reported in the result and logged.
func TestSendCutsToLimits(t *testing.T) {
	open := testNow.Add(-time.Hour)
	cases := []struct {
		name   string
		params map[string]any
		field  func(m map[string]any) string
		want   string
		note   string
	}{
		{"text of 4097 runes", map[string]any{"text": strings.Repeat("щ", 4097)},
			func(m map[string]any) string { return m["text"].(map[string]any)["body"].(string) }, strings.Repeat("щ", 4095) + "…", "text: 4097 characters, cut to 4096"},
		{"interactive body over 1024", map[string]any{"text": strings.Repeat("щ", 1025), "buttons": []any{"Да"}},
			func(m map[string]any) string {
				return m["interactive"].(map[string]any)["body"].(map[string]any)["text"].(string)
			}, strings.Repeat("щ", 1023) + "…", "text: 1025 characters, cut to 1024"},
		{"title of 21 runes", map[string]any{"text": "?", "buttons": []any{map[string]any{"id": "x", "title": strings.Repeat("ж", 21)}}},
			func(m map[string]any) string {
				return m["interactive"].(map[string]any)["action"].(map[string]any)["buttons"].([]any)[0].(map[string]any)["reply"].(map[string]any)["title"].(string)
			}, strings.Repeat("ж", 19) + "…", "buttons[0].title: 21 characters, cut to 20"},
		{"row title of 25 runes", map[string]any{"text": "?", "list": map[string]any{"button": "b", "rows": []any{map[string]any{"id": "1", "title": strings.Repeat("я", 25)}}}},
			func(m map[string]any) string {
				sec := m["interactive"].(map[string]any)["action"].(map[string]any)["sections"].([]any)[0].(map[string]any)
				return sec["rows"].([]any)[0].(map[string]any)["title"].(string)
			}, strings.Repeat("я", 23) + "…", "list.rows[0].title: 25 characters, cut to 24"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			res, err := New(Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}).Execute(context.Background(), sendReq(c.params, open))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.field(res.Data["payload"].(map[string]any)); got != c.want {
				t.Errorf("sent %q, want %q", got, c.want)
			}
			if cut, _ := res.Data["cut"].([]any); len(cut) != 1 || cut[0] != c.note {
				t.Errorf("cut = %v, want [%q]", res.Data["cut"], c.note)
			}
			if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), c.note) || !strings.Contains(logs.String(), `"dialog_id"`) {
				t.Errorf("no warning with the dialog id about the cut: %s", logs.String())
			}
		})
	}
}

func TestClientDryRun(t *testing.T) {
	const secretText = "Код домофона 4512"
	for _, cfg := range []Config{{AccessToken: testToken}, {PhoneNumberIDs: []string{testPhoneID}}} {
		var info, debug bytes.Buffer
		g := &graphServer{t: t, status: 200, body: sentOK}
		srv := httptest.NewServer(g)
		cfg.BaseURL = srv.URL
		cfg.Logger = slog.New(slog.NewJSONHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo}))
		res, err := New(cfg).Execute(context.Background(), sendReq(map[string]any{"text": secretText}, testNow.Add(-time.Hour)))
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g.calls.Load() != 0 {
			t.Errorf("dry run called Meta")
		}
		want := map[string]any{"dry_run": true, "via": "text", "payload": map[string]any{
			"messaging_product": "whatsapp", "recipient_type": "individual", "to": testWAID, "type": "text",
			"text": map[string]any{"body": secretText, "preview_url": false}}}
		if len(cfg.PhoneNumberIDs) > 0 {
			want["from"] = testPhoneID
		}
		if !res.DryRun || !reflect.DeepEqual(res.Data, want) {
			t.Errorf("result %+v\nwant data %v", res, want)
		}
		if !strings.Contains(info.String(), "dry-run") || !strings.Contains(info.String(), `"dialog_id":1`) {
			t.Errorf("info log lacks the dry-run line: %s", info.String())
		}
		for _, secret := range []string{"4512", testToken} {
			if strings.Contains(info.String(), secret) {
				t.Errorf("info log contains %q: %s", secret, info.String())
			}
		}

		cfg.Logger = slog.New(slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if _, err := New(cfg).Execute(context.Background(), sendReq(map[string]any{"text": secretText}, testNow.Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(debug.String(), "4512") || strings.Contains(debug.String(), testToken) {
			t.Errorf("debug log should hold the payload and never the token: %s", debug.String())
		}
	}

	// The window applies to dry runs too: a dry run shows what would really happen.
	_, err := New(Config{}).Execute(context.Background(), sendReq(map[string]any{"text": "x"}, time.Time{}))
	if code(err) != connectors.CodeWindowClosed {
		t.Errorf("dry run outside the window: %v", err)
	}
}

func TestClientRegistry(t *testing.T) {
	g := &graphServer{t: t, status: 200, body: sentOK}
	c := newTestClient(t, g, testToken)
	reg := connectors.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterSender(c); err != nil {
		t.Fatal(err)
	}
	if got := reg.Kinds(); !reflect.DeepEqual(got, []string{"waba.mark_read"}) {
		t.Errorf("Kinds = %v", got)
	}
	res, err := reg.Execute(context.Background(), sendReq(map[string]any{"text": "x"}, testNow.Add(-time.Hour)))
	if err != nil || res.Data["via"] != "text" || g.calls.Load() != 1 {
		t.Errorf("send through the registry: %+v, %v", res, err)
	}
	req := sendReq(nil, testNow)
	req.Kind = "okdesk.comment"
	if _, err := c.Execute(context.Background(), req); code(err) != connectors.CodeUnsupported {
		t.Errorf("foreign kind: %v", err)
	}
}
