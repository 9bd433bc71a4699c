package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// syncBuffer is a log sink safe for the processor's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines whose message is msg.
func (s *syncBuffer) lines(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// logged is a processor of the flows in dir on a SQLite file, as cfg says, that
// logs JSON lines at level to logs; its flows are loaded.
func logged(t *testing.T, dir string, logs *syncBuffer, level slog.Level, cfg Config) (*Processor, store.Store) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "f.db"), nil, store.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Now = st, clk.Now
	cfg.Flows = engine.NewHolder(clk.Now, engine.MustLoader(registry.DryRun()), dir)
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	p := New(cfg)
	if r := p.Reload(context.Background(), false); r.Result != engine.ReloadOK {
		t.Fatal(r)
	}
	return p, st
}

// TestLogsTellTheStory: at info, one line per processed event (dialog, flow,
// state from → to, actions queued), one per unrouted event (why), one per dead
// action (its error); a flow's log action at its level; no customer text unless
// LogContent.
func TestLogsTellTheStory(t *testing.T) {
	for _, content := range []bool{false, true} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f.yaml"), []byte(`flow: f
start: telegram.message
initial: a
states:
  a:
    enter:
      - log: { message: "started for ${event.contact.id}", level: warn }
      - okdesk.comment: { issue_id: "1", content: "x" }
    on:
      telegram.message: [ { goto: a } ]
`), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		conn := &fakeConn{answers: map[string][]error{"okdesk.comment": {
			&connectors.Error{Connector: "okdesk", Code: connectors.CodeServer, Status: 503, Message: "down", Retryable: true}}}}
		reg := connectors.NewRegistry()
		_ = reg.Register(conn)
		var logs syncBuffer
		p, st := logged(t, dir, &logs, slog.LevelInfo, Config{Registry: reg, MaxAttempts: 1, LogContent: content})
		tg := func(key, text string) event.Event {
			return event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: key, Keys: []string{"telegram:7"}, Text: text,
				Contact: event.Contact{Channel: "telegram", ID: "7"}, Data: map[string]any{}}
		}
		if _, err := p.Inbox().Append(ctx, []event.Event{tg("m1", "Меня зовут Анна"),
			{Source: "okdesk", Type: "okdesk.new_ticket", DedupeKey: "o1", Keys: []string{"okdesk:issue:9"}, Data: map[string]any{}}}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_ = p.RouteOnce(ctx)
			p.Drain()
			_, _ = p.RunOutbox(ctx)
		}
		p.Inbox().Close()
		st.Close()

		processed := logs.lines("event processed")
		if len(processed) < 1 {
			t.Fatalf("no processed line:\n%s", logs.b.String())
		}
		first := processed[0]
		if first["dialog_id"] != 1.0 || first["flow"] != "f" || first["from"] != "" || first["to"] != "a" ||
			first["level"] != "INFO" || !strings.Contains(fmt.Sprint(first["actions"]), "okdesk.comment") {
			t.Errorf("processed line %v", first)
		}
		if _, hasText := first["text"]; hasText != content {
			t.Errorf("LogContent=%v: text in the line: %v", content, first["text"])
		}
		if !content && strings.Contains(logs.b.String(), "Анна") {
			t.Errorf("customer text in the log without LogContent")
		}
		if u := logs.lines("event unrouted"); len(u) != 1 || !strings.Contains(u[0]["reason"].(string), "okdesk.new_ticket") {
			t.Errorf("unrouted lines %v", u)
		}
		if l := logs.lines("started for 7"); len(l) != 1 || l[0]["level"] != "WARN" || l[0]["dialog_id"] != 1.0 {
			t.Errorf("the flow's log action: %v", l)
		}
		if d := logs.lines("action dead: retries exhausted"); len(d) != 1 || d[0]["level"] != "ERROR" || d[0]["code"] != "server_error" {
			t.Errorf("dead action lines %v", d)
		}
	}
}

// TestNoCustomerTextInLogs: without LogContent no line of the log, at any level,
// carries what the customer wrote, though start guards and steps fail on it and
// their errors quote it; with LogContent the errors keep it.
func TestNoCustomerTextInLogs(t *testing.T) {
	for _, content := range []bool{false, true} {
		dir := t.TempDir()
		files := map[string]string{
			// Tried first: its start guard fails on the text.
			"a.yaml": `flow: a
start: { on: telegram.message, when: int(event.text) > 0 }
initial: s
states:
  s: { final: true }
`,
			"b.yaml": `flow: b
start: { on: telegram.message }
initial: s
vars: { n: 0 }
states:
  s:
    on:
      telegram.message: [ { set: { n: int(event.text) } } ]
`}
		for name, src := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		var logs syncBuffer
		p, st := logged(t, dir, &logs, slog.LevelDebug, Config{LogContent: content})
		for i, text := range []string{"Секретный адрес", "Тайный телефон"} {
			if _, err := p.Inbox().Append(ctx, []event.Event{{Source: "telegram", Type: "telegram.message", DedupeKey: fmt.Sprint("m", i),
				Keys: []string{"telegram:7"}, Text: text, Contact: event.Contact{Channel: "telegram", ID: "7", Name: "Анна Петровна"},
				Data: map[string]any{}}}); err != nil {
				t.Fatal(err)
			}
			if err := p.RouteOnce(ctx); err != nil {
				t.Fatal(err)
			}
			p.Drain()
		}
		p.Inbox().Close()
		st.Close()
		if len(logs.lines("start guard failed")) == 0 || len(logs.lines("event failed")) == 0 {
			t.Fatalf("no failure lines:\n%s", logs.b.String())
		}
		for _, secret := range []string{"Секретный", "Тайный", "Петровна"} {
			if got := strings.Contains(logs.b.String(), secret); got != (content && secret != "Петровна") {
				t.Errorf("LogContent=%v: %q in the log: %v\n%s", content, secret, got, logs.b.String())
			}
		}
	}
}
