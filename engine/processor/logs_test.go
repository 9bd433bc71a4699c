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
		clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
		st, err := store.Open(ctx, filepath.Join(t.TempDir(), "f.db"), nil, store.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		conn := &fakeConn{answers: map[string][]error{"okdesk.comment": {
			&connectors.Error{Connector: "okdesk", Code: connectors.CodeServer, Status: 503, Message: "down", Retryable: true}}}}
		reg := connectors.NewRegistry()
		_ = reg.Register(conn)
		var logs syncBuffer
		p := New(Config{Store: st, Flows: engine.NewHolder(clk.Now, engine.MustLoader(registry.DryRun()), dir), Registry: reg, Now: clk.Now, MaxAttempts: 1, LogContent: content,
			Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		if r := p.Reload(ctx, false); r.Result != engine.ReloadOK {
			t.Fatal(r)
		}
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
