package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/connectors"
)

const testToken = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// apiCall is one request the fake Bot API received.
type apiCall struct {
	Method      string
	ContentType string
	Body        map[string]any
}

// fakeBotAPI is an httptest server that speaks the Bot API: it routes
// /bot<token>/<method>, answers 404 {"ok":false,...} for any other token exactly as
// Telegram does, and answers with reply for the right one.
type fakeBotAPI struct {
	*httptest.Server
	mu    sync.Mutex
	calls []apiCall
}

func newFakeBotAPI(t *testing.T, reply func(w http.ResponseWriter, method string, body map[string]any)) *fakeBotAPI {
	t.Helper()
	f := &fakeBotAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix := "/bot" + testToken + "/"
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, prefix) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			t.Errorf("request body is not JSON: %v: %s", err, raw)
		}
		method := strings.TrimPrefix(r.URL.Path, prefix)
		f.mu.Lock()
		f.calls = append(f.calls, apiCall{Method: method, ContentType: r.Header.Get("Content-Type"), Body: body})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		reply(w, method, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeBotAPI) Calls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

// okSend answers sendMessage like Telegram does, with the sent Message.
func okSend(w http.ResponseWriter, method string, body map[string]any) {
	switch method {
	case "sendMessage":
		chat, _ := json.Marshal(body["chat_id"])
		text, _ := json.Marshal(body["text"])
		fmt.Fprintf(w, `{"ok":true,"result":{"message_id":1203,"from":{"id":7012345678,"is_bot":true,"first_name":"Fixit","username":"fixit_bot"},"chat":{"id":%s,"first_name":"Анна","type":"private"},"date":1764400300,"text":%s}}`,
			chat, text)
	case "answerCallbackQuery":
		io.WriteString(w, `{"ok":true,"result":true}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"ok":false,"error_code":404,"description":"Not Found: method not found"}`)
	}
}

func newClient(t *testing.T, base, token string, log *slog.Logger) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, Token: token, Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func sendReq(params map[string]any) connectors.Request {
	return connectors.Request{ID: "out-1", Kind: "send", Params: params, Now: testNow,
		Dialog: dialog.Dialog{ID: 1, Channel: "telegram", ContactID: "512345678"}}
}

// jsonEqual compares a request body with the expected JSON text.
func jsonEqual(t *testing.T, got map[string]any, want string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	var w map[string]any
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("request body\n got: %s\nwant: %s", g, want)
	}
}

func TestSendRequestShapes(t *testing.T) {
	cases := []struct {
		name    string
		contact string
		params  map[string]any
		want    string
		via     string
	}{
		{
			name:   "text",
			params: map[string]any{"text": "Здравствуйте! Как к вам обращаться?"},
			want:   `{"chat_id":512345678,"text":"Здравствуйте! Как к вам обращаться?"}`,
			via:    "text",
		},
		{
			name:   "header and footer become paragraphs",
			params: map[string]any{"header": "Заявка №1542", "text": "Мастер выехал", "footer": "Fixit"},
			want:   `{"chat_id":512345678,"text":"Заявка №1542\n\nМастер выехал\n\nFixit"}`,
			via:    "text",
		},
		{
			name: "buttons, one per row",
			params: map[string]any{"text": "Подтвердите адрес", "buttons": []any{
				map[string]any{"id": "addr_ok", "title": "Да"},
				map[string]any{"id": "addr_change", "title": "Изменить"},
			}},
			want: `{"chat_id":512345678,"text":"Подтвердите адрес","reply_markup":{"inline_keyboard":[
				[{"text":"Да","callback_data":"addr_ok"}],[{"text":"Изменить","callback_data":"addr_change"}]]}}`,
			via: "buttons",
		},
		{
			name:   "buttons as plain titles",
			params: map[string]any{"text": "Оцените", "buttons": []any{"5", "4"}},
			want: `{"chat_id":512345678,"text":"Оцените","reply_markup":{"inline_keyboard":[
				[{"text":"5","callback_data":"5"}],[{"text":"4","callback_data":"4"}]]}}`,
			via: "buttons",
		},
		{
			name: "numeric button id",
			params: map[string]any{"text": "Выберите", "buttons": []map[string]any{
				{"id": float64(1542), "title": "Заявка 1542"},
			}},
			want: `{"chat_id":512345678,"text":"Выберите","reply_markup":{"inline_keyboard":[[{"text":"Заявка 1542","callback_data":"1542"}]]}}`,
			via:  "buttons",
		},
		{
			name: "list rows, one per row",
			params: map[string]any{"text": "Что случилось?", "list": map[string]any{
				"button": "Выбрать", "section": "Неисправности",
				"rows": []any{
					map[string]any{"id": "leak", "title": "Протечка", "description": "Вода из трубы"},
					map[string]any{"id": "power", "title": "Нет света"},
				},
			}},
			want: `{"chat_id":512345678,"text":"Что случилось?","reply_markup":{"inline_keyboard":[
				[{"text":"Протечка — Вода из трубы","callback_data":"leak"}],[{"text":"Нет света","callback_data":"power"}]]}}`,
			via: "list",
		},
		{
			name:   "template next to text is ignored",
			params: map[string]any{"text": "Счёт оплачен", "template": map[string]any{"name": "paid", "language": "ru"}},
			want:   `{"chat_id":512345678,"text":"Счёт оплачен"}`,
			via:    "text",
		},
		{
			name:    "supergroup id beyond 2^53 stays exact",
			contact: "-9007199254740993",
			params:  map[string]any{"text": "x"},
			want:    `{"chat_id":-9007199254740993,"text":"x"}`,
			via:     "text",
		},
		{
			name:    "channel username",
			contact: "@fixit_news",
			params:  map[string]any{"text": "x"},
			want:    `{"chat_id":"@fixit_news","text":"x"}`,
			via:     "text",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeBotAPI(t, okSend)
			client := newClient(t, api.URL, testToken, nil)
			req := sendReq(c.params)
			if c.contact != "" {
				req.Dialog.ContactID = c.contact
			}
			res, err := client.Execute(context.Background(), req)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			calls := api.Calls()
			if len(calls) != 1 || calls[0].Method != "sendMessage" {
				t.Fatalf("calls = %+v, want one sendMessage", calls)
			}
			if calls[0].ContentType != "application/json" {
				t.Errorf("Content-Type = %q", calls[0].ContentType)
			}
			jsonEqual(t, calls[0].Body, c.want)
			if res.DryRun || res.Data["via"] != c.via || res.Data["message_id"] != "1203" {
				t.Errorf("result = %+v, want via %q and message_id \"1203\"", res, c.via)
			}
		})
	}
}

func TestSendResultData(t *testing.T) {
	api := newFakeBotAPI(t, okSend)
	client := newClient(t, api.URL+"/", testToken, nil) // a trailing slash in the base is tolerated
	res, err := client.Execute(context.Background(), sendReq(map[string]any{"text": "hi"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"message_id": "1203", "chat_id": "512345678", "via": "text"}
	if !reflect.DeepEqual(res.Data, want) || res.DryRun {
		t.Errorf("result = %+v, want Data %v", res, want)
	}
}

// TestSendCutsLongText: a text (header and footer included) longer than Telegram
// takes is cut, sent, reported and logged.
func TestSendCutsLongText(t *testing.T) {
	var logs bytes.Buffer
	client := newClient(t, "http://127.0.0.1:1", "", slog.New(slog.NewJSONHandler(&logs, nil)))
	res, err := client.Execute(context.Background(), sendReq(map[string]any{"text": strings.Repeat("я", maxTextRunes+1)}))
	if err != nil {
		t.Fatal(err)
	}
	text := res.Data["payload"].(map[string]any)["text"].(string)
	if want := strings.Repeat("я", maxTextRunes-1) + "…"; text != want {
		t.Errorf("sent %d characters ending %q", len([]rune(text)), string([]rune(text)[len([]rune(text))-3:]))
	}
	if cut, _ := res.Data["cut"].([]any); len(cut) != 1 || !strings.Contains(cut[0].(string), "cut to 4096") {
		t.Errorf("cut = %v", res.Data["cut"])
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), `"dialog_id"`) {
		t.Errorf("no warning with the dialog id: %s", logs.String())
	}
}

func TestBadParams(t *testing.T) {
	cases := []struct {
		name    string
		kind    string
		contact string
		params  map[string]any
		mention string
	}{
		{"no text", "send", "1", map[string]any{}, "text"},
		{"blank text", "send", "1", map[string]any{"text": "  "}, "text"},
		{"template only", "send", "1", map[string]any{"template": map[string]any{"name": "paid"}}, "no templates"},
		{"text of a wrong type", "send", "1", map[string]any{"text": map[string]any{"a": 1}}, "text"},
		{"no chat", "send", "", map[string]any{"text": "hi"}, "chat id"},
		{"buttons and list", "send", "1", map[string]any{"text": "x", "buttons": []any{"a"}, "list": map[string]any{"rows": []any{"b"}}}, "mutually exclusive"},
		{"buttons not a list", "send", "1", map[string]any{"text": "x", "buttons": "a,b"}, "buttons"},
		{"button without id or title", "send", "1", map[string]any{"text": "x", "buttons": []any{map[string]any{}}}, "buttons[0]"},
		{"button of a wrong type", "send", "1", map[string]any{"text": "x", "buttons": []any{42}}, "buttons[0]"},
		{"callback data over 64 bytes", "send", "1", map[string]any{"text": "x", "buttons": []any{
			map[string]any{"id": strings.Repeat("ж", 33), "title": "t"}}}, "64"},
		{"list without rows", "send", "1", map[string]any{"text": "x", "list": map[string]any{"button": "b"}}, "list.rows"},
		{"list not an object", "send", "1", map[string]any{"text": "x", "list": []any{"a"}}, "list"},
		{"no callback id", ActionAnswerCallback, "1", map[string]any{"text": "ok"}, "callback_id"},
		{"callback answer too long", ActionAnswerCallback, "1", map[string]any{"callback_id": "a", "text": strings.Repeat("x", 201)}, "200"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeBotAPI(t, okSend)
			for _, token := range []string{testToken, ""} { // dry-run validates too
				client := newClient(t, api.URL, token, nil)
				req := sendReq(c.params)
				req.Kind, req.Dialog.ContactID = c.kind, c.contact
				_, err := client.Execute(context.Background(), req)
				e, ok := errors.AsType[*connectors.Error](err)
				if !ok || e.Code != connectors.CodeBadParams || e.Retryable {
					t.Fatalf("token %t: err = %v, want non-retryable %s", token != "", err, connectors.CodeBadParams)
				}
				if !strings.Contains(e.Error(), c.mention) {
					t.Errorf("error %q does not mention %q", e.Error(), c.mention)
				}
			}
			if n := len(api.Calls()); n != 0 {
				t.Errorf("%d API calls made for unusable params", n)
			}
		})
	}
}

func TestAnswerCallback(t *testing.T) {
	api := newFakeBotAPI(t, okSend)
	client := newClient(t, api.URL, testToken, nil)
	cases := []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"callback_id": "2201917623456789012", "text": "Принято"}, `{"callback_query_id":"2201917623456789012","text":"Принято"}`},
		{map[string]any{"callback_id": "2201917623456789012"}, `{"callback_query_id":"2201917623456789012"}`},
		{map[string]any{"callback_id": "1", "text": "Нет мест", "show_alert": true}, `{"callback_query_id":"1","text":"Нет мест","show_alert":true}`},
	}
	for i, c := range cases {
		res, err := client.Execute(context.Background(), connectors.Request{Kind: ActionAnswerCallback, Params: c.params, Now: testNow})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		calls := api.Calls()
		if len(calls) != i+1 || calls[i].Method != "answerCallbackQuery" {
			t.Fatalf("case %d: calls = %+v", i, calls)
		}
		jsonEqual(t, calls[i].Body, c.want)
		if res.Data["answered"] != true || res.Data["callback_id"] != c.params["callback_id"] {
			t.Errorf("case %d: result = %+v", i, res)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		code       string
		retryable  bool
		retryAfter time.Duration
		apiCode    int
		mention    string
	}{
		{
			name: "flood control", status: 429,
			body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}`,
			code: connectors.CodeRateLimited, retryable: true, retryAfter: 17 * time.Second, apiCode: 429, mention: "Too Many Requests",
		},
		{
			name: "429 with only a Retry-After header", status: 429, header: map[string]string{"Retry-After": "5"},
			body: `{"ok":false,"error_code":429,"description":"Too Many Requests"}`,
			code: connectors.CodeRateLimited, retryable: true, retryAfter: 5 * time.Second, apiCode: 429,
		},
		{
			name: "internal error", status: 500,
			body: `{"ok":false,"error_code":500,"description":"Internal Server Error"}`,
			code: connectors.CodeServer, retryable: true, apiCode: 500, mention: "Internal Server Error",
		},
		{
			name: "gateway HTML", status: 502, body: `<html><body><h1>502 Bad Gateway</h1></body></html>`,
			code: connectors.CodeServer, retryable: true, mention: "Bad Gateway",
		},
		{
			name: "revoked token", status: 401, body: `{"ok":false,"error_code":401,"description":"Unauthorized"}`,
			code: connectors.CodeAuth, apiCode: 401, mention: "Unauthorized",
		},
		{
			name: "malformed token", status: 404, body: `{"ok":false,"error_code":404,"description":"Not Found"}`,
			code: connectors.CodeAuth, apiCode: 404,
		},
		{
			name: "bot blocked", status: 403, body: `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`,
			code: connectors.CodeUndeliverable, apiCode: 403, mention: "blocked by the user",
		},
		{
			name: "chat not found", status: 400, body: `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`,
			code: connectors.CodeBadRequest, apiCode: 400, mention: "chat not found",
		},
		{
			name: "group migrated", status: 400,
			body: `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001987654321}}`,
			code: connectors.CodeBadRequest, apiCode: 400, mention: "-1001987654321",
		},
		{
			name: "success status with a garbage body", status: 200, body: `<html>ok</html>`,
			code: CodeBadResponse, mention: "not a Bot API success",
		},
		{
			name: "ok true with an unexpected result", status: 200, body: `{"ok":true,"result":"sent"}`,
			code: CodeBadResponse, mention: "unexpected result",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeBotAPI(t, func(w http.ResponseWriter, _ string, _ map[string]any) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			client := newClient(t, api.URL, testToken, nil)
			_, err := client.Execute(context.Background(), sendReq(map[string]any{"text": "hi"}))
			e, ok := errors.AsType[*connectors.Error](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *connectors.Error", err, err)
			}
			if e.Connector != "telegram" || e.Code != c.code || e.Retryable != c.retryable || e.RetryAfter != c.retryAfter ||
				e.Status != c.status || e.APICode != c.apiCode {
				t.Errorf("err = %+v, want code %s retryable %v retry-after %v status %d api code %d",
					e, c.code, c.retryable, c.retryAfter, c.status, c.apiCode)
			}
			if !strings.Contains(e.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", e.Error(), c.mention)
			}
		})
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		client := newClient(t, base, testToken, nil)
		_, err := client.Execute(context.Background(), sendReq(map[string]any{"text": "hi"}))
		e, ok := errors.AsType[*connectors.Error](err)
		if !ok || e.Code != connectors.CodeNetwork || !e.Retryable {
			t.Fatalf("err = %v, want retryable %s", err, connectors.CodeNetwork)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		client := newClient(t, srv.URL, testToken, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := client.Execute(ctx, sendReq(map[string]any{"text": "hi"}))
		e, ok := errors.AsType[*connectors.Error](err)
		if !ok || e.Code != connectors.CodeNetwork || !e.Retryable {
			t.Fatalf("err = %v, want retryable %s", err, connectors.CodeNetwork)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
		}
	})
}

// TestTokenNeverLeaks drives every failure path and checks that the token appears in
// no error text, no wrapped cause and no log line (at debug level).
func TestTokenNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	echo := func(status int) *fakeBotAPI {
		return newFakeBotAPI(t, func(w http.ResponseWriter, _ string, _ map[string]any) {
			w.WriteHeader(status)
			// A misbehaving proxy that echoes the request path back.
			fmt.Fprintf(w, `{"ok":false,"error_code":%d,"description":"no route to /bot%s/sendMessage"}`, status, testToken)
		})
	}
	redirectLoop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirectLoop.Close)
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hangUp.Close)

	bases := map[string]string{
		"refused":       refusedURL,
		"echo 400":      echo(400).URL,
		"echo 429":      echo(429).URL,
		"echo 500":      echo(500).URL,
		"echo 200":      echo(200).URL,
		"redirect loop": redirectLoop.URL,
		"hang up":       hangUp.URL,
		"bad port":      "http://127.0.0.1:99999",
	}
	type target struct{ base, token string }
	targets := map[string]target{"token with a newline": {refusedURL, testToken + "\n"}}
	for name, base := range bases {
		targets[name] = target{base, testToken}
	}
	for name, tg := range targets {
		for _, kind := range []string{"send", ActionAnswerCallback} {
			client := newClient(t, tg.base, tg.token, log)
			req := sendReq(map[string]any{"text": "hi", "callback_id": "c1"})
			req.Kind = kind
			_, err := client.Execute(context.Background(), req)
			if err == nil {
				t.Fatalf("%s/%s: no error", name, kind)
			}
			for e := err; e != nil; e = errors.Unwrap(e) {
				for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
					if strings.Contains(s, testToken) || strings.Contains(s, "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw") {
						t.Errorf("%s/%s: token in error %T: %s", name, kind, e, s)
					}
				}
			}
		}
	}
	if strings.Contains(logs.String(), "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw") {
		t.Errorf("token in logs:\n%s", logs.String())
	}
	if logs.Len() == 0 {
		t.Error("no log lines at debug level: the log check proves nothing")
	}
}

func TestDryRun(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	api := newFakeBotAPI(t, okSend)
	client := newClient(t, api.URL, "", log)

	text := "Секретный текст клиента"
	res, err := client.Execute(context.Background(), sendReq(map[string]any{"text": text, "buttons": []any{map[string]any{"id": "y", "title": "Да"}}}))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	wantPayload := map[string]any{"chat_id": float64(512345678), "text": text,
		"reply_markup": map[string]any{"inline_keyboard": []any{[]any{map[string]any{"text": "Да", "callback_data": "y"}}}}}
	if !res.DryRun || res.Data["dry_run"] != true || res.Data["method"] != "sendMessage" || !reflect.DeepEqual(res.Data["payload"], wantPayload) {
		t.Errorf("result = %#v, want a dry run with payload %v", res, wantPayload)
	}

	res, err = client.Execute(context.Background(), connectors.Request{Kind: ActionAnswerCallback, Params: map[string]any{"callback_id": "c1"}})
	if err != nil || !res.DryRun || res.Data["method"] != "answerCallbackQuery" {
		t.Errorf("answer callback dry run = %+v, %v", res, err)
	}
	if n := len(api.Calls()); n != 0 {
		t.Errorf("%d API calls in dry-run mode", n)
	}
	if !strings.Contains(logs.String(), "dry-run") {
		t.Errorf("no dry-run log line: %s", logs.String())
	}
	if strings.Contains(logs.String(), text) {
		t.Errorf("message text logged at info level: %s", logs.String())
	}
}

func TestUnsupportedKind(t *testing.T) {
	client := newClient(t, "", testToken, nil)
	_, err := client.Execute(context.Background(), connectors.Request{Kind: "waba.mark_read"})
	if e, ok := errors.AsType[*connectors.Error](err); !ok || e.Code != connectors.CodeUnsupported {
		t.Fatalf("err = %v, want %s", err, connectors.CodeUnsupported)
	}
	if client.Channel() != "telegram" || !reflect.DeepEqual(client.Kinds(), []string{"telegram.answer_callback"}) {
		t.Errorf("Channel/Kinds = %q/%q", client.Channel(), client.Kinds())
	}
}

func TestRegistryDispatch(t *testing.T) {
	api := newFakeBotAPI(t, okSend)
	client := newClient(t, api.URL, testToken, nil)
	reg := connectors.NewRegistry()
	if err := reg.RegisterSender(client); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(client); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Execute(context.Background(), sendReq(map[string]any{"text": "hi"})); err != nil {
		t.Fatalf("send via registry: %v", err)
	}
	if _, err := reg.Execute(context.Background(), connectors.Request{Kind: ActionAnswerCallback, Params: map[string]any{"callback_id": "c"}}); err != nil {
		t.Fatalf("answer via registry: %v", err)
	}
	calls := api.Calls()
	if len(calls) != 2 || calls[0].Method != "sendMessage" || calls[1].Method != "answerCallbackQuery" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, base := range []string{"api.telegram.org", "ftp://api.telegram.org", "https://", "http://x/?a=b", "::"} {
		_, err := New(Config{BaseURL: base, Token: testToken})
		if err == nil {
			t.Errorf("New(%q) accepted a bad base URL", base)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("New(%q) error leaks the token: %v", base, err)
		}
	}
	c, err := New(Config{Token: testToken})
	if err != nil || c.base != DefaultBaseURL {
		t.Errorf("New with no base = %v, %v; want %s", c, err, DefaultBaseURL)
	}
}
