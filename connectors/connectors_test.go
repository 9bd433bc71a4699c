package connectors

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

func TestHTTPErrorClassification(t *testing.T) {
	cases := []struct {
		status    int
		code      string
		retryable bool
	}{
		{429, CodeRateLimited, true}, {500, CodeServer, true}, {503, CodeServer, true},
		{401, CodeAuth, false}, {403, CodeAuth, false}, {404, CodeNotFound, false},
		{400, CodeBadRequest, false}, {422, CodeBadRequest, false},
	}
	for _, c := range cases {
		e := HTTPError("okdesk", c.status, 3*time.Second, "m")
		if e.Code != c.code || e.Retryable != c.retryable || e.Status != c.status || e.RetryAfter != 3*time.Second {
			t.Errorf("HTTPError(%d) = %+v, want %s retryable=%v", c.status, e, c.code, c.retryable)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"30", 30 * time.Second}, {"0", 0}, {"junk", 0},
		{now.Add(90 * time.Second).Format(time.RFC1123), 90 * time.Second},
		{now.Add(-time.Minute).Format(time.RFC1123), 0},
	}
	for _, c := range cases {
		if got := ParseRetryAfter(c.in, now); got != c.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestAsError(t *testing.T) {
	typed := &Error{Connector: "waba", Code: CodeWindowClosed}
	if AsError("x", typed) != typed || AsError("x", nil) != nil {
		t.Error("a typed error must come back as is, nil as nil")
	}
	e := AsError("okdesk", errors.New("connection reset"))
	if e.Code != CodeNetwork || !e.Retryable || e.Connector != "okdesk" {
		t.Errorf("an untyped failure must be a retryable network error: %+v", e)
	}
	if e := AsError("okdesk", context.Canceled); !e.Retryable || !errors.Is(e, context.Canceled) {
		t.Errorf("canceled: %+v", e)
	}
	if got := (&Error{Connector: "waba", Code: CodeWindowClosed, Status: 400, APICode: 131047, Message: "closed"}).Error(); got != "waba: window_closed (http 400) (code 131047): closed" {
		t.Errorf("Error() = %q", got)
	}
}

type fakeExec struct {
	kinds []string
	name  string
}

func (f fakeExec) Kinds() []string { return f.kinds }
func (f fakeExec) Channel() string { return f.name }
func (f fakeExec) Execute(_ context.Context, r Request) (Result, error) {
	return Result{Data: map[string]any{"by": f.name, "kind": r.Kind}}, nil
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	if err := r.Register(fakeExec{kinds: []string{"okdesk.comment", "okdesk.create_issue"}, name: "okdesk"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(fakeExec{kinds: []string{"okdesk.comment"}}); err == nil {
		t.Error("a kind registered twice must be refused")
	}
	if err := r.RegisterSender(fakeExec{name: "waba"}); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterSender(fakeExec{name: "waba"}); err == nil {
		t.Error("a channel registered twice must be refused")
	}
	if got := r.Kinds(); !reflect.DeepEqual(got, []string{"okdesk.comment", "okdesk.create_issue"}) {
		t.Errorf("Kinds() = %v", got)
	}
	res, err := r.Execute(context.Background(), Request{Kind: "send", Dialog: dialog.Dialog{Channel: "waba"}})
	if err != nil || res.Data["by"] != "waba" {
		t.Errorf("send goes to the dialog's channel: %v %v", res, err)
	}
	for _, req := range []Request{{Kind: "send", Dialog: dialog.Dialog{Channel: "telegram"}}, {Kind: "onec.read"}} {
		_, err := r.Execute(context.Background(), req)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeUnsupported || e.Retryable {
			t.Errorf("%s on %q: %v, want a non-retryable unsupported error", req.Kind, req.Dialog.Channel, err)
		}
	}
}

func TestDecodeObjectAndPlainNumbers(t *testing.T) {
	m, err := DecodeObject([]byte(`{"id": 9007199254740993, "n": 1.5, "big": 1e400, "l": [1, {"x": 2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m["id"].(interface{ String() string }).String() != "9007199254740993" {
		t.Errorf("a 64-bit id lost precision: %v", m["id"])
	}
	want := map[string]any{"id": float64(9007199254740993), "n": 1.5, "big": "1e400", "l": []any{float64(1), map[string]any{"x": float64(2)}}}
	if got := PlainNumbers(m); !reflect.DeepEqual(got, want) {
		t.Errorf("PlainNumbers = %#v", got)
	}
	for _, bad := range []string{`[1]`, `{} {}`, `{`, ``, `"x"`} {
		if _, err := DecodeObject([]byte(bad)); err == nil {
			t.Errorf("DecodeObject(%q) accepted it", bad)
		}
	}
}

func TestRedactAndTruncate(t *testing.T) {
	const tok = "tok+en/secret=1"
	s := Redact("GET /bot"+tok+"/x?api_token=tok%2Ben%2Fsecret%3D1 short=ab", tok, "ab", "")
	if s != "GET /bot[redacted]/x?api_token=[redacted] short=ab" {
		t.Errorf("Redact = %q", s)
	}
	cause := errors.New("dial tcp: timeout")
	e := RedactedError{Msg: "shown", Err: cause}
	if e.Error() != "shown" || !errors.Is(e, cause) {
		t.Errorf("RedactedError must print its message and keep its cause")
	}
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{{"short", 10, "short"}, {"abcdef", 3, "abc…"}, {"Привет", 3, "П…"}} {
		if got := Truncate(c.in, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
