package httpcall

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
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/connectors"
)

var testNow = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// received is what the test server saw.
type received struct {
	Method, Path, RawQuery, Body string
	Header                       http.Header
	Host                         string
}

func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *[]received) {
	t.Helper()
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, received{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: string(b), Header: r.Header.Clone(), Host: r.Host})
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func execute(c *Client, params map[string]any) (connectors.Result, error) {
	return c.Execute(context.Background(), connectors.Request{ID: "ob-1", Kind: Kind, Params: params, Now: testNow})
}

func TestRequestShapes(t *testing.T) {
	tests := []struct {
		name       string
		params     map[string]any // "url" is prefixed with the server URL
		wantMethod string
		wantQuery  string
		wantBody   string
		wantCT     string
		wantHeader map[string]string
		wantHost   string
	}{
		{name: "plain get", params: map[string]any{"url": "/x"}, wantMethod: "GET"},
		{
			name:       "map body is json and implies post",
			params:     map[string]any{"url": "/x", "body": map[string]any{"issue": float64(153), "ok": true}},
			wantMethod: "POST", wantBody: `{"issue":153,"ok":true}`, wantCT: "application/json",
		},
		{
			name:       "list body",
			params:     map[string]any{"url": "/x", "method": "put", "body": []any{"a", float64(1)}},
			wantMethod: "PUT", wantBody: `["a",1]`, wantCT: "application/json",
		},
		{
			name:       "string body as is, header overrides content type",
			params:     map[string]any{"url": "/x", "body": "a=1&b=2", "headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"}},
			wantMethod: "POST", wantBody: "a=1&b=2", wantCT: "application/x-www-form-urlencoded",
		},
		{
			name:       "string body default content type",
			params:     map[string]any{"url": "/x", "body": "hello"},
			wantMethod: "POST", wantBody: "hello", wantCT: "text/plain; charset=utf-8",
		},
		{
			name: "query merged and encoded",
			params: map[string]any{"url": "/x?a=1&keep=yes", "query": map[string]any{
				"a": "2", "phone": "+79161234567", "ids": []any{float64(1), "2"}, "flag": true}},
			wantMethod: "GET", wantQuery: "a=2&flag=true&ids=1&ids=2&keep=yes&phone=%2B79161234567",
		},
		{
			name:       "headers",
			params:     map[string]any{"url": "/x", "method": "DELETE", "headers": map[string]any{"X-Request-Id": "r1", "X-Count": float64(3)}},
			wantMethod: "DELETE", wantHeader: map[string]string{"X-Request-Id": "r1", "X-Count": "3"},
		},
		{
			name:       "host header sets the request host",
			params:     map[string]any{"url": "/x", "headers": map[string]any{"host": "api.example"}},
			wantMethod: "GET", wantHost: "api.example",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
			tc.params["url"] = srv.URL + tc.params["url"].(string)
			if _, err := execute(New(Config{HTTP: srv.Client()}), tc.params); err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("%d requests, want 1", len(*got))
			}
			r := (*got)[0]
			if r.Method != tc.wantMethod || r.Path != "/x" || r.RawQuery != tc.wantQuery || r.Body != tc.wantBody {
				t.Errorf("got %s %s?%s body %q; want %s /x?%s body %q", r.Method, r.Path, r.RawQuery, r.Body, tc.wantMethod, tc.wantQuery, tc.wantBody)
			}
			if ct := r.Header.Get("Content-Type"); ct != tc.wantCT {
				t.Errorf("content type %q, want %q", ct, tc.wantCT)
			}
			if tc.wantHost != "" && r.Host != tc.wantHost {
				t.Errorf("host %q, want %q", r.Host, tc.wantHost)
			}
			for k, v := range tc.wantHeader {
				if r.Header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, r.Header.Get(k), v)
				}
			}
		})
	}
}

func TestResponses(t *testing.T) {
	big := strings.Repeat("x", MaxBodyBytes+10)
	tests := []struct {
		name          string
		contentType   string
		body          string
		wantBody      any
		wantTruncated bool
	}{
		{"json object", "application/json; charset=utf-8", `{"id": 7, "tags": ["a"]}`, map[string]any{"id": float64(7), "tags": []any{"a"}}, false},
		{"json suffix type", "application/problem+json", `{"title": "x"}`, map[string]any{"title": "x"}, false},
		{"text", "text/plain", `{"id": 7}`, `{"id": 7}`, false},
		{"broken json stays text", "application/json", `{"id":`, `{"id":`, false},
		{"no content type", "", "hi", "hi", false},
		{"capped at 1 MiB", "application/json", big, big[:MaxBodyBytes], true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.Header().Add("X-Multi", "first")
				w.Header().Add("X-Multi", "second")
				w.WriteHeader(201)
				_, _ = io.WriteString(w, tc.body)
			})
			res, err := execute(New(Config{HTTP: srv.Client()}), map[string]any{"url": srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["status"] != 201 {
				t.Errorf("status = %#v, want 201", res.Data["status"])
			}
			if !reflect.DeepEqual(res.Data["body"], tc.wantBody) {
				b := fmt.Sprint(res.Data["body"])
				t.Errorf("body = %.80s (%T), want %.80v", b, res.Data["body"], tc.wantBody)
			}
			if got, _ := res.Data["truncated"].(bool); got != tc.wantTruncated {
				t.Errorf("truncated = %v, want %v", got, tc.wantTruncated)
			}
			h := res.Data["headers"].(map[string]any)
			if h["X-Multi"] != "first" {
				t.Errorf("headers[X-Multi] = %#v, want the first value", h["X-Multi"])
			}
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		body       string
		wantCode   string
		retryable  bool
		wantAfter  time.Duration
	}{
		{400, "", `{"error": "bad field"}`, connectors.CodeBadRequest, false, 0},
		{401, "", "", connectors.CodeAuth, false, 0},
		{404, "", "no such thing", connectors.CodeNotFound, false, 0},
		{422, "5", "invalid", connectors.CodeBadRequest, false, 5 * time.Second},
		{429, "30", "slow down", connectors.CodeRateLimited, true, 30 * time.Second},
		{429, "Mon, 30 Nov 2026 10:01:00 GMT", "", connectors.CodeRateLimited, true, time.Minute},
		{500, "", strings.Repeat("е", 1000), connectors.CodeServer, true, 0},
		{503, "12", "", connectors.CodeServer, true, 12 * time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status, tc.retryAfter), func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := execute(New(Config{HTTP: srv.Client()}), map[string]any{"url": srv.URL + "/hook?api_key=abcdef", "body": map[string]any{}})
			var e *connectors.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *connectors.Error", err)
			}
			if e.Code != tc.wantCode || e.Retryable != tc.retryable || e.RetryAfter != tc.wantAfter || e.Status != tc.status || e.Connector != Connector {
				t.Errorf("error = %+v", e)
			}
			if !strings.HasPrefix(e.Message, "POST "+srv.URL+"/hook: ") {
				t.Errorf("message %q does not name the call (without its query)", e.Message)
			}
			if strings.Contains(e.Message, "abcdef") {
				t.Errorf("message %q leaks the query string", e.Message)
			}
			want := strings.TrimSpace(tc.body)
			if len(want) > maxMessageBytes {
				want = want[:maxMessageBytes]
			}
			if !strings.Contains(e.Message, want) || len(e.Message) > maxMessageBytes+200 {
				t.Errorf("message %q should hold the body cut to %d bytes", e.Message, maxMessageBytes)
			}
		})
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	const (
		bearer = "Bearer sk-live-0123456789"
		cookie = "session=c00kie-value"
		token  = "tkn-abcdef"
		secret = "shh-secret-42"
		qtoken = "query+tok/en=="
	)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	params := func(url string) map[string]any {
		return map[string]any{
			"url":   url,
			"query": map[string]any{"access_token": qtoken},
			"headers": map[string]any{
				"Authorization": bearer, "Cookie": cookie, "X-Api-Token": token, "X-Client-Secret": secret,
			},
		}
	}
	secrets := []string{bearer, "sk-live-0123456789", cookie, token, secret, qtoken, "query%2Btok%2Fen%3D%3D"}
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("want an error")
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			for _, s := range secrets {
				if strings.Contains(e.Error(), s) {
					t.Errorf("%T leaks %q: %s", e, s, e.Error())
				}
			}
		}
		for _, s := range secrets {
			if strings.Contains(logs.String(), s) {
				t.Errorf("log leaks %q: %s", s, logs.String())
			}
		}
	}

	t.Run("server echoes the request", func(t *testing.T) {
		srv, got := server(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(map[string]any{"headers": r.Header, "query": r.URL.RawQuery})
		})
		_, err := New(Config{HTTP: srv.Client(), Logger: logger}).Execute(context.Background(),
			connectors.Request{Kind: Kind, Params: params(srv.URL), Now: testNow})
		check(t, err)
		if r := (*got)[0]; r.Header.Get("Authorization") != bearer || r.Header.Get("X-Api-Token") != token {
			t.Errorf("secrets were not sent: %v", r.Header)
		}
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("error %q should show where a secret was removed", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := New(Config{Logger: logger}).Execute(context.Background(),
			connectors.Request{Kind: Kind, Params: params(srv.URL + "/p"), Now: testNow})
		check(t, err)
		if e := connectors.AsError(Connector, err); e.Code != connectors.CodeNetwork || !e.Retryable {
			t.Errorf("error = %+v, want a retryable network error", e)
		}
	})
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	p := map[string]any{"url": srv.URL, "timeout": "50ms"}
	_, err := execute(New(Config{HTTP: srv.Client()}), p)
	e := connectors.AsError(Connector, err)
	if e == nil || e.Code != connectors.CodeNetwork || !e.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a retryable network error wrapping context.DeadlineExceeded", err)
	}
	if !strings.Contains(e.Message, "timed out") {
		t.Errorf("message %q does not say it timed out", e.Message)
	}
}

func TestBadParams(t *testing.T) {
	tests := []struct {
		params map[string]any
		param  string
	}{
		{map[string]any{}, "url"},
		{map[string]any{"url": "/relative"}, "url"},
		{map[string]any{"url": "ftp://example.com/x"}, "url"},
		{map[string]any{"url": "file:///etc/passwd"}, "url"},
		{map[string]any{"url": "http://"}, "url"},
		{map[string]any{"url": "mailto:a@b.c"}, "url"},
		{map[string]any{"url": float64(5)}, "url"},
		{map[string]any{"url": "https://example.com", "method": "GE T"}, "method"},
		{map[string]any{"url": "https://example.com", "headers": "x"}, "headers"},
		{map[string]any{"url": "https://example.com", "headers": map[string]any{"Bad Name": "x"}}, "headers"},
		{map[string]any{"url": "https://example.com", "headers": map[string]any{"X-A": "a\r\nX-Injected: 1"}}, "headers"},
		{map[string]any{"url": "https://example.com", "headers": map[string]any{"X-A": map[string]any{}}}, "headers"},
		{map[string]any{"url": "https://example.com", "query": []any{"a"}}, "query"},
		{map[string]any{"url": "https://example.com", "query": map[string]any{"a": map[string]any{}}}, "query"},
		{map[string]any{"url": "https://example.com", "timeout": "soon"}, "timeout"},
		{map[string]any{"url": "https://example.com", "timeout": "-1s"}, "timeout"},
		{map[string]any{"url": "https://example.com", "timeout": "1h"}, "timeout"},
		{map[string]any{"url": "https://example.com", "timeout": true}, "timeout"},
	}
	c := New(Config{HTTP: &http.Client{Transport: failTransport{t}}})
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.params), func(t *testing.T) {
			_, err := execute(c, tc.params)
			var e *connectors.Error
			if !errors.As(err, &e) || e.Code != connectors.CodeBadParams || e.Retryable {
				t.Fatalf("err = %v, want a non-retryable bad_params error", err)
			}
			if !strings.Contains(e.Message, `"`+tc.param+`"`) {
				t.Errorf("message %q does not name %q", e.Message, tc.param)
			}
		})
	}
}

func TestTimeoutParam(t *testing.T) {
	tests := []struct {
		v    any
		want time.Duration
	}{
		{nil, DefaultTimeout},
		{"", DefaultTimeout},
		{"1m30s", 90 * time.Second},
		{float64(2.5), 2500 * time.Millisecond},
		{3, 3 * time.Second},
	}
	for _, tc := range tests {
		got, err := timeoutParam(map[string]any{"timeout": tc.v})
		if err != nil || got != tc.want {
			t.Errorf("timeout %#v = %v, %v; want %v", tc.v, got, err, tc.want)
		}
	}
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request sent for unusable params: %s %s", r.Method, r.URL.Host)
	return nil, errors.New("unexpected request")
}

func TestKinds(t *testing.T) {
	r := connectors.NewRegistry()
	if err := r.Register(New(Config{})); err != nil {
		t.Fatal(err)
	}
	if got := r.Kinds(); !reflect.DeepEqual(got, []string{"http"}) {
		t.Errorf("kinds = %v", got)
	}
	_, err := New(Config{}).Execute(context.Background(), connectors.Request{Kind: "https"})
	if e := connectors.AsError(Connector, err); e.Code != connectors.CodeUnsupported {
		t.Errorf("wrong kind: %v", err)
	}
}

// FuzzDecodeBody: any answer becomes valid UTF-8 text or plain JSON values that marshal.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"id": 7, "tags": ["a"]}`), "application/json; charset=utf-8")
	f.Add([]byte(`[1, 2.5e300, null]`), "application/vnd.api+json")
	f.Add([]byte("\xff\xfe text"), "text/plain")
	f.Add([]byte(`{"a":`), "application/json")
	f.Add([]byte(`1e400`), "application/json")
	f.Fuzz(func(t *testing.T, raw []byte, contentType string) {
		v := decodeBody(raw, contentType, false)
		if s, ok := v.(string); ok {
			if !utf8.ValidString(s) {
				t.Fatalf("text %q is not valid UTF-8", s)
			}
			return
		}
		if !isJSON(contentType) {
			t.Fatalf("decoded %T for content type %q", v, contentType)
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded body does not marshal: %v", err)
		}
	})
}

// TestDryRun: in dry-run a call is checked and recorded, never made, and its
// query (which may hold a secret) is left out of the record.
func TestDryRun(t *testing.T) {
	srv, got := server(t, func(w http.ResponseWriter, r *http.Request) {})
	c := New(Config{DryRun: true})
	res, err := execute(c, map[string]any{"url": srv.URL + "/hook?token=s3cret", "body": map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(*got) != 0 {
		t.Errorf("dry-run made %d calls", len(*got))
	}
	if !res.DryRun || res.Data["method"] != "POST" || res.Data["url"] != srv.URL+"/hook" {
		t.Errorf("result = %+v", res)
	}
	if _, err := execute(c, map[string]any{"url": "ftp://x"}); err == nil {
		t.Errorf("dry-run did not check the params")
	}
}
