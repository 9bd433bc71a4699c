package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/store"
)

// TestControlBodies: each control takes one JSON object of its own fields; the
// answer names what is wrong (400: not such an object; 422: a field wrong for the
// control), and nothing reaches the processor unless the body is right.
func TestControlBodies(t *testing.T) {
	long := strings.Repeat("я", maxMessageChars+1)
	tests := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"takeover", "/dialogs/7/takeover", `{"reason":"a call"}`, 200, ""},
		{"an empty handback", "/dialogs/7/handback", ``, 200, ""},
		{"a message", "/dialogs/7/messages", `{"text":"Добрый день"}`, 200, ""},
		{"a template", "/dialogs/7/messages", `{"template":{"name":"repair_done","language":"ru","params":["1542"]}}`, 200, ""},
		{"not JSON", "/dialogs/7/takeover", `{"reason":`, 400, "not a JSON object"},
		{"an array", "/dialogs/7/takeover", `["reason"]`, 400, "not a JSON object"},
		{"null", "/dialogs/7/takeover", `null`, 400, "not a JSON object"},
		{"data after the object", "/dialogs/7/goto", `{"reason":"x","state":"a"}{"state":"b"}`, 400, "unexpected data after"},
		{"text after the object", "/dialogs/7/takeover", `{"reason":"x"} xxx`, 400, "unexpected data after"},
		{"a wrong type", "/dialogs/7/takeover", `{"reason":5}`, 400, `invalid field "reason": want a JSON string, not number`},
		{"a template's params as a string", "/dialogs/7/messages", `{"template":{"name":"a","language":"ru","params":"x"}}`, 400, `want a JSON array`},
		{"a field of another control", "/dialogs/7/takeover", `{"reason":"x","text":"hi"}`, 422, `unknown field "text": a takeover takes reason`},
		{"a status on a takeover", "/dialogs/7/takeover", `{"reason":"x","status":"finished"}`, 422, `unknown field "status"`},
		{"a reason on a message", "/dialogs/7/messages", `{"text":"hi","reason":"x"}`, 422, `unknown field "reason": a message takes text, template`},
		{"an unknown field", "/dialogs/7/close", `{"status":"finished","reason":"x","whom":"me"}`, 422, `unknown field "whom"`},
		{"a message too long", "/dialogs/7/messages", `{"text":"` + long + `"}`, 422, fmt.Sprintf(`%d characters, more than a message takes (%d)`, maxMessageChars+1, maxMessageChars)},
		{"a reason too long", "/dialogs/7/takeover", `{"reason":"` + strings.Repeat("x", 501) + `"}`, 422, `"reason": 501 characters, the limit is 500`},
		{"text and template", "/dialogs/7/messages", `{"text":"a","template":{"name":"a","language":"ru"}}`, 422, `either "text" or "template"`},
		{"a dialog id that is not a number", "/dialogs/abc/takeover", `{"reason":"x"}`, 400, "dialog id must be a positive integer"},
		{"a dialog id of zero", "/dialogs/0/takeover", `{"reason":"x"}`, 400, "dialog id must be a positive integer"},
		{"an outbox id that is not a number", "/outbox/x1/retry", ``, 400, "outbox item id must be a positive integer"},
		{"an event id that is not a number", "/events/-4/redrive", ``, 400, "event id must be a positive integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeControls{}
			e := newEnv(t, func(c *Config) { c.Controls = fc })
			rec := e.admin("POST", "/api/v1"+tc.path, []byte(tc.body))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				if msg := errorOf(t, rec); !strings.Contains(msg, tc.msg) {
					t.Errorf("error %q, want it to contain %q", msg, tc.msg)
				}
				if len(fc.calls) != 0 {
					t.Errorf("a refused body reached the processor: %+v", fc.calls)
				}
			} else if len(fc.calls) != 1 {
				t.Errorf("%d controls reached the processor, want 1", len(fc.calls))
			}
		})
	}
}

// TestControlErrors: what the processor answers becomes a status with a message
// that says what to do, and never an internal error's text.
func TestControlErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("load dialog 7: %w", store.ErrNotFound), 404, "no dialog 7"},
		{&engine.ErrControl{Msg: "the dialog is finished"}, 409, "the dialog is finished"},
		{&engine.ErrControl{Msg: "no state ask_nmae", Invalid: true}, 422, "no state ask_nmae"},
		{fmt.Errorf("update dialogs: %w", store.ErrConflict), 409, "the dialog changed meanwhile"},
		{ErrQueued, 202, ""},
		{fmt.Errorf("dial tcp 10.0.0.5:5432: connection refused"), 500, "failed on the server's side"},
	}
	for _, tc := range tests {
		fc := &fakeControls{err: tc.err}
		e := newEnv(t, func(c *Config) { c.Controls = fc })
		rec := e.admin("POST", "/api/v1/dialogs/7/takeover", []byte(`{"reason":"x"}`))
		if rec.Code != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, rec.Code, tc.status)
			continue
		}
		if strings.Contains(rec.Body.String(), "10.0.0.5") || strings.Contains(rec.Body.String(), "update dialogs") {
			t.Errorf("%v: the answer shows an internal error: %s", tc.err, rec.Body)
		}
		if tc.msg != "" && !strings.Contains(errorOf(t, rec), tc.msg) {
			t.Errorf("%v: error %q, want %q", tc.err, errorOf(t, rec), tc.msg)
		}
	}
}
