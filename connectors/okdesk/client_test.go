package okdesk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/connectors"
)

const testToken = "tok-5ecret+/=value"

var testNow = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// seen is one request as the fake Okdesk received it.
type seen struct {
	Method     string
	Path       string
	RequestURI string // raw, as sent on the wire
	Body       map[string]any
}

// fakeOkdesk is an httptest server that checks api_token like Okdesk does and hands
// every authenticated request to handle.
type fakeOkdesk struct {
	mu   sync.Mutex
	reqs []seen
}

func (f *fakeOkdesk) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body map[string]any)) (*Client, *fakeOkdesk) {
	t.Helper()
	f := &fakeOkdesk{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if len(raw) > 0 {
			if r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("%s %s: content type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Errorf("%s %s: body is not a JSON object: %v", r.Method, r.URL.Path, err)
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, Body: body})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.URL.Query().Get("api_token") != testToken {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":"Вы не авторизованы"}`)
			return
		}
		handle(w, r, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL + "/api/v1/", APIToken: testToken, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func run(c *Client, kind string, params map[string]any) (connectors.Result, error) {
	return c.Execute(context.Background(), connectors.Request{ID: "ob-1", Kind: kind, Params: params, Now: testNow})
}

func reply(w http.ResponseWriter, status int, body string) {
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func jsonEqual(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	g, _ := json.Marshal(got)
	var gv any
	_ = json.Unmarshal(g, &gv)
	if !reflect.DeepEqual(gv, w) {
		t.Errorf("%s = %s, want %s", what, g, want)
	}
}

func TestFindContact(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(call int) (int, string)
		wantData  map[string]any
		wantCalls []string // raw query of each request, without api_token
	}{
		{
			name: "found by +7",
			answer: func(int) (int, string) {
				return 200, `{"id": 21, "name": "Анна Смирнова", "phone": "+79161234567"}`
			},
			wantData:  map[string]any{"found": true, "contact_id": "21"},
			wantCalls: []string{"phone=%2B79161234567"},
		},
		{
			name: "found by the 8 variant",
			answer: func(call int) (int, string) {
				if call == 1 {
					return 200, `{"id": "22"}`
				}
				return 404, `{"errors": "Контакт не найден"}`
			},
			wantData:  map[string]any{"found": true, "contact_id": "22"},
			wantCalls: []string{"phone=%2B79161234567", "phone=89161234567"},
		},
		{
			name:      "not found: 404",
			answer:    func(int) (int, string) { return 404, `{"errors": "Not found"}` },
			wantData:  map[string]any{"found": false, "contact_id": ""},
			wantCalls: []string{"phone=%2B79161234567", "phone=89161234567", "phone=79161234567"},
		},
		{
			name:      "not found: empty answers",
			answer:    func(call int) (int, string) { return 200, []string{``, `{}`, `[]`}[call] },
			wantData:  map[string]any{"found": false, "contact_id": ""},
			wantCalls: []string{"phone=%2B79161234567", "phone=89161234567", "phone=79161234567"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call := 0
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/v1/contacts/" {
					t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
				}
				status, body := tc.answer(call)
				call++
				reply(w, status, body)
			})
			res, err := run(c, KindFindContact, map[string]any{"phone": "+7 (916) 123-45-67"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Data, tc.wantData) || res.DryRun {
				t.Errorf("result = %+v, want data %v", res, tc.wantData)
			}
			reqs := f.requests()
			if len(reqs) != len(tc.wantCalls) {
				t.Fatalf("%d requests, want %d", len(reqs), len(tc.wantCalls))
			}
			for i, want := range tc.wantCalls {
				// The raw URI proves the wire form: '+' must travel as %2B.
				if !strings.Contains(reqs[i].RequestURI, want) || strings.Contains(reqs[i].RequestURI, "phone=+") {
					t.Errorf("request %d URI %q, want it to contain %q", i, reqs[i].RequestURI, want)
				}
			}
		})
	}
}

func TestContactActions(t *testing.T) {
	t.Run("create_contact", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			reply(w, 200, `{"id": 64, "name": "Смирнова Анна", "phone": "+79161234567"}`)
		})
		res, err := run(c, KindCreateContact, map[string]any{"phone": "8 916 123-45-67", "first_name": "Анна", "last_name": "Смирнова"})
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, "data", res.Data, `{"contact_id": "64"}`)
		reqs := f.requests()
		if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/contacts/" {
			t.Fatalf("requests = %+v", reqs)
		}
		jsonEqual(t, "body", reqs[0].Body, `{"contact": {"first_name": "Анна", "last_name": "Смирнова", "phone": "+79161234567"}}`)
	})

	t.Run("find_or_create finds", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			reply(w, 200, `{"id": 21}`)
		})
		res, err := run(c, KindFindOrCreateContact, map[string]any{"phone": "+79161234567", "name": "Анна"})
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, "data", res.Data, `{"contact_id": "21", "created": false}`)
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})

	t.Run("find_or_create creates", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			if r.Method == http.MethodGet {
				reply(w, 404, `{"errors": "Not found"}`)
				return
			}
			reply(w, 200, `{"id": 65}`)
		})
		res, err := run(c, KindFindOrCreateContact, map[string]any{"phone": "+44 20 7946 0958", "name": " Анна  Мария Смирнова "})
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, "data", res.Data, `{"contact_id": "65", "created": true}`)
		reqs := f.requests()
		if len(reqs) != 2 { // a non-Russian number has a single search variant
			t.Fatalf("%d requests, want 2: %+v", len(reqs), reqs)
		}
		jsonEqual(t, "body", reqs[1].Body, `{"contact": {"first_name": "Анна", "last_name": "Мария Смирнова", "phone": "+442079460958"}}`)
	})
}

func TestCreateIssue(t *testing.T) {
	t.Run("with contact_id", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			reply(w, 200, `{"id": 1543}`)
		})
		res, err := run(c, KindCreateIssue, map[string]any{
			"title": "WhatsApp: Анна", "description": "Не охлаждает", "contact_id": float64(21),
			"type": "service", "priority": "normal", "company_id": "15",
			"custom_parameters": map[string]any{"source_channel": "whatsapp"},
		})
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, "data", res.Data, `{"id": "1543", "issue_id": "1543", "contact_id": "21", "contact_created": false}`)
		reqs := f.requests()
		if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/issues/" {
			t.Fatalf("requests = %+v", reqs)
		}
		jsonEqual(t, "body", reqs[0].Body, `{"issue": {"title": "WhatsApp: Анна", "description": "Не охлаждает\n\nfixit #ob-1",
			"contact_id": "21", "company_id": "15", "type": "service", "priority": "normal",
			"custom_parameters": {"source_channel": "whatsapp"}}}`)
	})

	t.Run("phone: contact created first", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			switch {
			case r.Method == "GET" && r.URL.Path == "/api/v1/contacts/":
				reply(w, 404, `{"errors": "Not found"}`)
			case r.Method == "POST" && r.URL.Path == "/api/v1/contacts/":
				reply(w, 200, `{"id": 66, "name": "Анна Смирнова"}`)
			case r.Method == "POST" && r.URL.Path == "/api/v1/issues/":
				reply(w, 200, `{"id": 1544}`)
			default:
				t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
				reply(w, 404, `{}`)
			}
		})
		res, err := run(c, KindCreateIssue, map[string]any{"title": "t", "phone": "+79161234567", "name": "Анна Смирнова"})
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, "data", res.Data, `{"id": "1544", "issue_id": "1544", "contact_id": "66", "contact_created": true}`)
		reqs := f.requests()
		if len(reqs) != 5 {
			t.Fatalf("%d requests, want 3 searches, a contact and an issue", len(reqs))
		}
		jsonEqual(t, "contact body", reqs[3].Body, `{"contact": {"first_name": "Анна", "last_name": "Смирнова", "phone": "+79161234567"}}`)
		jsonEqual(t, "issue body", reqs[4].Body, `{"issue": {"title": "t", "contact_id": "66", "description": "fixit #ob-1"}}`)
	})

	t.Run("phone: contact found", func(t *testing.T) {
		c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			if r.Method == "GET" {
				reply(w, 200, `{"id": 21}`)
				return
			}
			reply(w, 200, `{"id": 1545}`)
		})
		res, err := run(c, KindCreateIssue, map[string]any{"title": "t", "phone": "79161234567"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Data["contact_id"] != "21" || res.Data["contact_created"] != false {
			t.Errorf("data = %v", res.Data)
		}
		if reqs := f.requests(); len(reqs) != 2 || reqs[1].Body["issue"].(map[string]any)["contact_id"] != "21" {
			t.Errorf("requests = %+v", reqs)
		}
	})

	t.Run("answer without id", func(t *testing.T) {
		c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			reply(w, 200, `{"title": "t"}`)
		})
		_, err := run(c, KindCreateIssue, map[string]any{"title": "t"})
		e := connectors.AsError(Connector, err)
		if e == nil || e.Code != CodeBadResponse || e.Retryable {
			t.Errorf("err = %v, want a non-retryable %s", err, CodeBadResponse)
		}
	})
}

func TestComment(t *testing.T) {
	tests := []struct {
		name     string
		authorID string // Config.CommentAuthorID
		params   map[string]any
		wantBody string
	}{
		{
			name:     "text is escaped, public by default",
			params:   map[string]any{"issue_id": "1542", "content": "Клиент:\nне <b>работает</b> & всё", "author_id": 21, "author_type": "contact"},
			wantBody: `{"comment": {"content": "Клиент:<br/>не &lt;b&gt;работает&lt;/b&gt; &amp; всё", "public": true, "author_id": 21, "author_type": "contact"}}`,
		},
		{
			name:     "html as is, private, configured author",
			authorID: "7",
			params:   map[string]any{"issue_id": float64(1542), "content": "<p>Готово</p>", "format": "html", "public": "false"},
			wantBody: `{"comment": {"content": "<p>Готово</p>", "public": false, "author_id": 7}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				reply(w, 200, `{"id": 1, "content": "x", "public": true, "attachments": [], "author": {"id": 10, "name": "Иванов Сергей Петрович", "type": "employee"}}`)
			})
			c.authorID = tc.authorID
			res, err := run(c, KindComment, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, "data", res.Data, `{"id": "1", "issue_id": "1542"}`)
			reqs := f.requests()
			if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/issues/1542/comments" {
				t.Fatalf("requests = %+v", reqs)
			}
			jsonEqual(t, "body", reqs[0].Body, tc.wantBody)
		})
	}
}

func TestChangeStatus(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		reply(w, 200, `{"id": 1542, "status": {"code": "completed", "name": "Решена"}}`)
	})
	res, err := run(c, KindChangeStatus, map[string]any{
		"issue_id": "1542", "status": "completed", "comment": "Клиент подтвердил", "comment_public": true, "skip_webhooks": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "data", res.Data, `{"issue_id": "1542", "status": "completed"}`)
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/issues/1542/statuses" {
		t.Fatalf("requests = %+v", reqs)
	}
	// Not wrapped in {"issue": ...}: the status endpoint takes the fields at the top.
	jsonEqual(t, "body", reqs[0].Body, `{"code": "completed", "comment": "Клиент подтвердил", "comment_public": true, "skip_options": ["skip_webhooks"]}`)
}

// restIssue is the official GET /issues/{id} sample (reference §1.4.2), shortened.
const restIssue = `{
  "id": 153, "title": "Требуется мастер на выезд", "description": "",
  "created_at": "2016-03-15T18:05:17.568+03:00", "source": "from_employee",
  "spent_time_total": 0, "company_id": 40, "group_id": 3, "service_object_id": null,
  "comments": {"count": 5, "last_at": "2018-07-05T16:06:10.000+03:00"},
  "parent_id": null, "child_ids": [],
  "type": {"id": 2, "code": "service", "name": "Обслуживание", "available_for_client": true},
  "priority": {"code": "low", "name": "Низкий"},
  "status": {"code": "opened", "name": "Открыта"},
  "old_status": {"code": "completed", "name": "Решена"},
  "rate": {"id": 3, "value": "normal"},
  "contact": {"id": 3020, "name": "Егор Егоров"},
  "agreement": null,
  "assignee": {"id": 1, "name": "Иванов Иван Викторович"}
}`

func TestGetIssue(t *testing.T) {
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		reply(w, 200, restIssue)
	})
	res, err := run(c, KindGetIssue, map[string]any{"issue_id": 153})
	if err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests(); len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/api/v1/issues/153" {
		t.Fatalf("requests = %+v", reqs)
	}
	want := map[string]any{
		"id": "153", "issue_id": "153", "title": "Требуется мастер на выезд",
		"status": "opened", "status_name": "Открыта", "old_status": "completed",
		"priority": "low", "type": "service", "type_name": "Обслуживание",
		"contact_id": "3020", "company_id": "40", "group_id": "3", "parent_id": "", "service_object_id": "",
		"rate": "normal", "spent_time_total": float64(0),
	}
	for k, v := range want {
		if got := res.Data[k]; got != v {
			t.Errorf("data[%q] = %#v, want %#v", k, got, v)
		}
	}
	if got := res.Data["comments"].(map[string]any)["count"]; got != float64(5) {
		t.Errorf("comments.count = %#v, want float64 5", got)
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantCode   string
		retryable  bool
		retryAfter time.Duration
		wantMsg    string
	}{
		{
			name: "validation (422)", status: 422,
			body:     `{"errors": {"title": ["не может быть пустым"], "page": {"size": ["должно быть меньше или равно 100"]}, "company_id": "не найдена"}}`,
			wantCode: connectors.CodeBadRequest,
			wantMsg:  "company_id: не найдена; page.size: должно быть меньше или равно 100; title: не может быть пустым",
		},
		{name: "auth", status: 401, body: `{"errors": "Токен неактивен"}`, wantCode: connectors.CodeAuth, wantMsg: "Токен неактивен"},
		{name: "not found", status: 404, body: `{"errors": "Not found"}`, wantCode: connectors.CodeNotFound, wantMsg: "Not found"},
		{
			name: "rate limited, seconds", status: 429, header: map[string]string{"Retry-After": "7"},
			body: `{"errors": "Too many requests"}`, wantCode: connectors.CodeRateLimited, retryable: true, retryAfter: 7 * time.Second,
		},
		{
			name: "rate limited, http date", status: 429, header: map[string]string{"Retry-After": "Mon, 30 Nov 2026 10:00:30 GMT"},
			wantCode: connectors.CodeRateLimited, retryable: true, retryAfter: 30 * time.Second,
		},
		{
			name: "server error, html body", status: 502, body: "<html>" + strings.Repeat("x", 2000) + "</html>",
			wantCode: connectors.CodeServer, retryable: true, wantMsg: "502 Bad Gateway: <html>xxx",
		},
		{name: "unavailable, retry-after", status: 503, header: map[string]string{"Retry-After": "120"}, wantCode: connectors.CodeServer, retryable: true, retryAfter: 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				reply(w, tc.status, tc.body)
			})
			_, err := run(c, KindComment, map[string]any{"issue_id": "1542", "content": "x"})
			var e *connectors.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *connectors.Error", err)
			}
			if e.Code != tc.wantCode || e.Retryable != tc.retryable || e.RetryAfter != tc.retryAfter || e.Status != tc.status {
				t.Errorf("error = %+v, want code %s retryable %v retry-after %v status %d", e, tc.wantCode, tc.retryable, tc.retryAfter, tc.status)
			}
			if !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("message %q, want it to contain %q", e.Message, tc.wantMsg)
			}
			if len(e.Message) > maxMessageBytes+100 {
				t.Errorf("message is %d bytes long, want it cut", len(e.Message))
			}
			if !strings.HasPrefix(err.Error(), "comment on issue 1542: okdesk: ") || !strings.Contains(e.Message, "POST /issues/1542/comments") {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}

// TestTokenNeverInErrors: the token travels in the query string, which *url.Error
// prints; no error layer may show it.
func TestTokenNeverInErrors(t *testing.T) {
	assertNoToken := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("want an error")
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
				if strings.Contains(s, testToken) || strings.Contains(s, "tok-5ecret") {
					t.Errorf("token leaked in %T: %s", e, s)
				}
			}
		}
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := New(Config{BaseURL: srv.URL + "/api/v1", APIToken: testToken})
		if err != nil {
			t.Fatal(err)
		}
		_, err = run(c, KindGetIssue, map[string]any{"issue_id": "1"})
		assertNoToken(t, err)
		if e := connectors.AsError(Connector, err); e.Code != connectors.CodeNetwork || !e.Retryable {
			t.Errorf("error = %+v, want a retryable network error", e)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		c, err := New(Config{BaseURL: srv.URL, APIToken: testToken})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = c.Execute(ctx, connectors.Request{Kind: KindGetIssue, Params: map[string]any{"issue_id": "1"}, Now: testNow})
		assertNoToken(t, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want it to wrap context.Canceled", err)
		}
	})
	t.Run("server echoes the token", func(t *testing.T) {
		c, _ := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			reply(w, 400, `{"errors": {"api_token": "`+r.URL.Query().Get("api_token")+` is odd"}}`)
		})
		_, err := run(c, KindGetIssue, map[string]any{"issue_id": "1"})
		assertNoToken(t, err)
	})
	t.Run("wrong token", func(t *testing.T) {
		c, _ := newFake(t, nil)
		c.token = testToken + "x"
		_, err := run(c, KindGetIssue, map[string]any{"issue_id": "1"})
		assertNoToken(t, err)
		if e := connectors.AsError(Connector, err); e.Code != connectors.CodeAuth {
			t.Errorf("code = %s, want auth", e.Code)
		}
	})
}

func TestBadParams(t *testing.T) {
	tests := []struct {
		kind   string
		params map[string]any
		param  string
	}{
		{KindFindContact, nil, "phone"},
		{KindFindContact, map[string]any{"phone": "12"}, "phone"},
		{KindFindContact, map[string]any{"phone": []any{"+7"}}, "phone"},
		{KindCreateContact, map[string]any{"phone": "+79161234567"}, "first_name"},
		{KindCreateIssue, map[string]any{"description": "x"}, "title"},
		{KindCreateIssue, map[string]any{"title": "t", "contact_id": "abc"}, "contact_id"},
		{KindCreateIssue, map[string]any{"title": "t", "phone": "call me"}, "phone"},
		{KindCreateIssue, map[string]any{"title": "t", "priority": "very high"}, "priority"},
		{KindCreateIssue, map[string]any{"title": "t", "custom_parameters": "x"}, "custom_parameters"},
		{KindComment, map[string]any{"content": "x"}, "issue_id"},
		{KindComment, map[string]any{"issue_id": "../contacts", "content": "x"}, "issue_id"},
		{KindComment, map[string]any{"issue_id": 1.5, "content": "x"}, "issue_id"},
		{KindComment, map[string]any{"issue_id": "1"}, "content"},
		{KindComment, map[string]any{"issue_id": "1", "content": "x", "public": "maybe"}, "public"},
		{KindComment, map[string]any{"issue_id": "1", "content": "x", "author_type": "bot"}, "author_type"},
		{KindComment, map[string]any{"issue_id": "1", "content": "x", "format": "markdown"}, "format"},
		{KindChangeStatus, map[string]any{"issue_id": "1"}, "status"},
		{KindChangeStatus, map[string]any{"issue_id": "1", "status": "closed?x=1"}, "status"},
		{KindGetIssue, map[string]any{"issue_id": "0"}, "issue_id"},
		{KindGetIssue, map[string]any{}, "issue_id"},
	}
	c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		reply(w, 200, `{"id": 1}`)
	})
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %v", tc.kind, tc.params), func(t *testing.T) {
			_, err := run(c, tc.kind, tc.params)
			var e *connectors.Error
			if !errors.As(err, &e) || e.Code != connectors.CodeBadParams || e.Retryable {
				t.Fatalf("err = %v, want a non-retryable bad_params error", err)
			}
			if !strings.Contains(e.Message, `"`+tc.param+`"`) {
				t.Errorf("message %q does not name %q", e.Message, tc.param)
			}
		})
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for unusable params, want 0", n)
	}
}

// failTransport fails the test when anything is sent.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("dry-run client sent %s %s", r.Method, r.URL.Path)
	return nil, errors.New("no network in dry-run")
}

func TestDryRun(t *testing.T) {
	for _, cfg := range []Config{{}, {BaseURL: "https://acme.okdesk.ru/api/v1"}, {APIToken: "t"}} {
		cfg.HTTP = &http.Client{Transport: failTransport{t}}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !c.DryRun() {
			t.Fatalf("config %+v: not a dry run", cfg)
		}
		res, err := run(c, KindCreateIssue, map[string]any{"title": "t", "phone": "+79161234567", "name": "Анна"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.DryRun || res.Data["dry_run"] != true || res.Data["id"] != DryRunID || res.Data["issue_id"] != DryRunID || res.Data["contact_id"] != DryRunID {
			t.Errorf("result = %+v", res)
		}
		jsonEqual(t, "request", res.Data["request"], `{"method": "POST", "path": "/issues/", "body": {"issue": {"title": "t", "contact_id": "dry-run", "description": "fixit #ob-1"}}}`)
		jsonEqual(t, "requests", res.Data["requests"], `[
			{"method": "GET", "path": "/contacts/", "query": {"phone": "+79161234567"}},
			{"method": "POST", "path": "/issues/", "body": {"issue": {"title": "t", "contact_id": "dry-run", "description": "fixit #ob-1"}}}]`)
	}
	c, _ := New(Config{})
	res, err := run(c, KindChangeStatus, map[string]any{"issue_id": "5", "status": "closed"})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "data", res.Data, `{"dry_run": true, "issue_id": "5", "status": "closed",
		"request": {"method": "POST", "path": "/issues/5/statuses", "body": {"code": "closed"}},
		"requests": [{"method": "POST", "path": "/issues/5/statuses", "body": {"code": "closed"}}]}`)
}

func TestRegistryAndKinds(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := connectors.NewRegistry()
	if err := r.Register(c); err != nil {
		t.Fatal(err)
	}
	want := []string{KindChangeStatus, KindComment, KindCreateContact, KindCreateIssue, KindFindContact, KindFindOrCreateContact, KindGetIssue}
	if got := r.Kinds(); !reflect.DeepEqual(got, want) {
		t.Errorf("kinds = %v, want %v", got, want)
	}
	_, err = c.Execute(context.Background(), connectors.Request{Kind: "okdesk.delete_issue"})
	if e := connectors.AsError(Connector, err); e.Code != connectors.CodeUnsupported {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"acme.okdesk.ru/api/v1", "ftp://acme.okdesk.ru", "https://", "://x"} {
		if _, err := New(Config{BaseURL: u, APIToken: "t"}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	if _, err := New(Config{CommentAuthorID: "seven"}); err == nil {
		t.Error("New accepted a non-numeric comment author id")
	}
}

// FuzzErrorMessage: whatever Okdesk answers, the message is short valid UTF-8.
func FuzzErrorMessage(f *testing.F) {
	f.Add([]byte(`{"errors": {"title": ["не может быть пустым"], "page": {"size": ["≤ 100"]}}}`))
	f.Add([]byte(`{"errors": "Токен неактивен"}`))
	f.Add([]byte(`{"errors": [1, null, {"a": true}]}`))
	f.Add([]byte("<html>\xff</html>"))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg := errorMessage(raw, "422 Unprocessable Entity")
		if msg == "" || !utf8.ValidString(msg) {
			t.Fatalf("message %q", msg)
		}
		if len(msg) > len("422 Unprocessable Entity: ")+maxMessageBytes+len("…") {
			t.Fatalf("message is %d bytes long", len(msg))
		}
	})
}

func TestBaseURLWithoutPath(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		reply(w, 200, restIssue)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIToken: testToken, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(c, KindGetIssue, map[string]any{"issue_id": "153"}); err != nil {
		t.Fatal(err)
	}
	if path != "/api/v1/issues/153" {
		t.Errorf("path = %q, want /api/v1/issues/153", path)
	}
}

// TestCreateIssueRetryFindsEarlierIssue: a retried create_issue (Attempt > 1) first
// looks through the contact's newest issues for the one its earlier try created,
// recognised by the "fixit #<outbox id>" reference, and creates none when found.
func TestCreateIssueRetryFindsEarlierIssue(t *testing.T) {
	cases := []struct {
		name    string
		list    string
		attempt int
		wantID  string
		reused  bool
		creates bool
	}{
		{"first try never searches", `[]`, 1, "1600", false, true},
		{"retry finds the earlier issue", `[{"id": 1599, "description": "Течёт\n\nfixit #12"}, {"id": 1590, "description": "fixit #1"}]`, 2, "1599", true, false},
		{"retry finds it in HTML", `[{"id": 1598, "description": "<p>Течёт</p><p>fixit #12</p>"}]`, 3, "1598", true, false},
		{"#12 is not #123", `[{"id": 1597, "description": "fixit #123"}]`, 2, "1600", false, true},
		{"retry creates when none carries the reference", `[{"id": 1596, "description": "другая заявка"}]`, 2, "1600", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				switch {
				case r.Method == "GET" && r.URL.Path == "/api/v1/issues/list":
					q := r.URL.Query()
					if q.Get("contact_ids[]") != "21" || q.Get("sorting[direction]") != "reverse" {
						t.Errorf("list query %s", r.URL.RawQuery)
					}
					reply(w, 200, tc.list)
				case r.Method == "POST" && r.URL.Path == "/api/v1/issues/":
					reply(w, 200, `{"id": 1600}`)
				default:
					t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
					reply(w, 404, `{}`)
				}
			})
			res, err := c.Execute(context.Background(), connectors.Request{ID: "12", Kind: KindCreateIssue, Attempt: tc.attempt, Now: testNow,
				Params: map[string]any{"title": "t", "description": "Течёт", "contact_id": "21"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["id"] != tc.wantID || (res.Data["reused"] == true) != tc.reused {
				t.Errorf("data = %v, want id %s reused %v", res.Data, tc.wantID, tc.reused)
			}
			created := false
			for _, r := range f.requests() {
				if r.Method == "POST" {
					created = true
					if d := r.Body["issue"].(map[string]any)["description"]; d != "Течёт\n\nfixit #12" {
						t.Errorf("description %q lacks the reference", d)
					}
				}
			}
			if created != tc.creates {
				t.Errorf("created an issue: %v, want %v", created, tc.creates)
			}
		})
	}
}
