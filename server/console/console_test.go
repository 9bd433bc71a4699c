package console

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func seq(n int64) *int64 { return &n }

func line(ev int64, kind dialog.HistoryKind, detail string) store.HistoryEntry {
	h := store.HistoryEntry{At: t0.Add(time.Duration(ev) * time.Second), Kind: kind, EventSeq: seq(ev)}
	if detail != "" {
		h.Detail = json.RawMessage(detail)
	}
	return h
}

func TestBuildDialogView(t *testing.T) {
	hist := []store.HistoryEntry{
		line(1, dialog.HistEvent, `{"start":true,"type":"waba.message"}`),
		line(1, dialog.HistAction, `{"kind":"send","line":9}`),
		// a step that failed: its action was never queued
		line(2, dialog.HistEvent, `{"type":"waba.message"}`),
		line(2, dialog.HistAction, `{"kind":"send","line":12}`),
		line(2, dialog.HistError, `{"error":"boom","state":"ask"}`),
		line(3, dialog.HistOperator, `{"control":"takeover","operator":"anna","reason":"vip"}`),
		line(3, dialog.HistHandoff, `{"by":"operator anna","reason":"vip"}`),
		line(4, dialog.HistOperator, `{"control":"message","operator":"anna"}`),
		line(4, dialog.HistAction, `{"by":"operator anna","kind":"send"}`),
		line(5, dialog.HistHandoff, `{"reason":"dialog is with a human; event kept in history"}`),
		line(6, dialog.HistOperator, `{"control":"handback","operator":"anna"}`),
		line(6, dialog.HistHandoff, `{"by":"operator anna","end":true}`),
		line(7, dialog.HistAction, `{"kind":"okdesk.create_issue","line":30}`),
		line(8, dialog.HistEnd, `{"status":"finished"}`),
	}
	msg := func(seq int64, text string) store.Event {
		return store.Event{Seq: seq, ReceivedAt: t0.Add(time.Duration(seq) * time.Second),
			Event: event.Event{Source: "waba", Type: event.TypeWABAMessage, Text: text}}
	}
	events := []store.Event{msg(1, "Hello"), msg(2, "Anna"), msg(5, "Are you there?"),
		{Seq: 9, Event: event.Event{Source: "waba", Type: event.TypeWABAStatus, Data: map[string]any{"message_id": "wamid.1", "status": "read"}}},
		{Seq: 10, Event: event.Event{Source: "waba", Type: event.TypeWABAStatus, Data: map[string]any{"message_id": "wamid.1", "status": "delivered"}}},
	}
	actions := []store.OutboxItem{
		{ID: 12, Kind: "okdesk.create_issue", Status: store.OutboxDead, LastError: "503"},
		{ID: 10, Kind: "send", Status: store.OutboxDone, Params: json.RawMessage(`{"text":"Hi! Your name?"}`), Result: json.RawMessage(`{"message_id":"wamid.1"}`)},
		{ID: 11, Kind: "send", Status: store.OutboxFailed, Params: json.RawMessage(`{"text":"Anna here"}`), LastError: "window closed"},
	}
	v := BuildDialogView(hist, events, actions, nil)
	var got []string
	for _, m := range v.Messages {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|held=%v|%s|#%d", m.From, m.Name, m.Control, m.Delivery, m.Held, m.Error, m.ActionID))
	}
	want := []string{
		"customer||||held=false||#0",
		"bot|||read|held=false||#10",
		"customer||||held=false||#0",
		"note|anna|takeover||held=false||#0",
		"operator|anna||failed|held=false|window closed|#11",
		"customer||||held=true||#0",
		"note|anna|handback||held=false||#0",
		"note|end|||held=false||#0",
	}
	// texts and deliveries checked apart, to keep the table readable
	texts := []string{"Hello", "Hi! Your name?", "Anna", "vip", "Anna here", "Are you there?", "", "finished"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i, m := range v.Messages {
		if m.Text != texts[i] {
			t.Errorf("message %d text %q, want %q", i, m.Text, texts[i])
		}
	}
	if v.Messages[1].Delivery != "read" {
		t.Errorf("the bot's message: delivery %q, want read (the furthest status reported)", v.Messages[1].Delivery)
	}
	if len(v.Steps) != 8 || v.Steps[0].Event == nil || v.Steps[0].Event.Text != "Hello" {
		t.Fatalf("steps: %d", len(v.Steps))
	}
	if a := v.Steps[6].Lines[0].Action; a == nil || a.ID != 12 {
		t.Errorf("the Okdesk action line is matched to %+v, want item 12", a)
	}
	if a := v.Steps[1].Lines[1].Action; a != nil {
		t.Errorf("the failed step's action is matched to item %d", a.ID)
	}
	if v.Actions[0].ID != 12 || v.Actions[2].ID != 10 {
		t.Errorf("actions are not newest first: %d, %d", v.Actions[0].ID, v.Actions[2].ID)
	}
}

// TestBuildDialogViewMismatch: when the history and the outbox disagree, the
// lines stay unmatched instead of being matched wrongly.
func TestBuildDialogViewMismatch(t *testing.T) {
	hist := []store.HistoryEntry{line(1, dialog.HistAction, `{"kind":"send"}`), line(2, dialog.HistAction, `{"kind":"send"}`)}
	actions := []store.OutboxItem{{ID: 1, Kind: "okdesk.comment"}, {ID: 2, Kind: "send"}}
	v := BuildDialogView(hist, nil, actions, nil)
	for _, st := range v.Steps {
		if st.Lines[0].Action != nil {
			t.Errorf("line of event %d matched to item %d", *st.Lines[0].EventSeq, st.Lines[0].Action.ID)
		}
	}
}

func loadFlow(t *testing.T, file string) *engine.Flow {
	t.Helper()
	set, diags := engine.MustLoader(registry.DryRun()).Load(file)
	if set == nil || diags.HasErrors() {
		t.Fatalf("load %s: %v", file, diags)
	}
	return set.Flows()[0]
}

// TestLayout checks the diagram of the shipped flow: every state drawn once,
// none overlapping another, every transition drawn with its count, and the
// layout stable (golden file; -update rewrites it).
func TestLayout(t *testing.T) {
	for _, file := range []string{"../../flows.d/simple_lead_flow.yaml", "../../examples/telegram_visit_confirmation.yaml",
		"../../examples/okdesk_to_1c_invoice.yaml"} {
		f := loadFlow(t, file)
		t.Run(f.Name, func(t *testing.T) {
			edges := f.Edges()
			taken := map[engine.Pos]int64{edges[0].Pos: 7}
			d := Layout(f, map[string]int64{f.Initial: 3}, taken, 5)
			if len(d.Nodes) != len(f.StateNames) || len(d.Edges) != len(edges) {
				t.Fatalf("%d nodes, %d edges; want %d, %d", len(d.Nodes), len(d.Edges), len(f.StateNames), len(edges))
			}
			for i, a := range d.Nodes {
				if a.X < 0 || a.Y < 0 || a.X+a.W > d.Width || a.Y+a.H > d.Height {
					t.Errorf("%s lies outside the drawing", a.Name)
				}
				for _, b := range d.Nodes[i+1:] {
					if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
						t.Errorf("%s and %s overlap", a.Name, b.Name)
					}
				}
				if a.Initial != (a.Name == f.Initial) || (a.Name == f.Initial) != (a.Live == 3) {
					t.Errorf("%s: initial %v, live %d", a.Name, a.Initial, a.Live)
				}
				if a.Final && a.Y != maxY(d) {
					t.Errorf("final state %s is not in the last layer", a.Name)
				}
			}
			if d.Edges[0].Count != 7 || d.Start.Count != 5 {
				t.Errorf("counts: edge %d, start %d", d.Edges[0].Count, d.Start.Count)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%s %dx%d\n", d.Flow, d.Width, d.Height)
			for _, n := range d.Nodes {
				fmt.Fprintf(&b, "node %s %d,%d %dx%d final=%v\n", n.Name, n.X, n.Y, n.W, n.H, n.Final)
			}
			for _, e := range d.Edges {
				fmt.Fprintf(&b, "edge %s -> %s %q back=%v label@%d,%d %s\n", e.From, e.To, e.Short, e.Back, e.LabelX, e.LabelY, e.Path)
			}
			golden := filepath.Join("testdata", f.Name+".layout")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./server/console -update)", err)
			}
			if string(want) != b.String() {
				t.Errorf("layout differs from %s (run with -update after checking the drawing):\n%s", golden, b.String())
			}
		})
	}
}

func maxY(d Diagram) int {
	y := 0
	for _, n := range d.Nodes {
		y = max(y, n.Y)
	}
	return y
}

func TestSessions(t *testing.T) {
	now := t0
	s := NewSessions(10*time.Minute, time.Hour, func() time.Time { return now })
	id, sess := s.Create("anna", 2)
	if sess.Name != "anna" || sess.Role != 2 || len(sess.CSRF) < 40 || len(id) < 40 || id == sess.CSRF {
		t.Fatalf("session %+v, id %q", sess, id)
	}
	if id2, _ := s.Create("anna", 2); id2 == id {
		t.Fatal("two sessions share an id")
	}
	for _, tt := range []struct {
		step time.Duration
		live bool
	}{{9 * time.Minute, true}, {9 * time.Minute, true}, {9 * time.Minute, true}, {9 * time.Minute, true}, {9 * time.Minute, true}, {9 * time.Minute, true}, {9 * time.Minute, false}} {
		now = now.Add(tt.step)
		if _, ok := s.Get(id); ok != tt.live {
			t.Fatalf("at %v: live %v, want %v (idle 10 min, at most 1 h)", now.Sub(t0), ok, tt.live)
		}
	}
	id, _ = s.Create("vera", 1)
	now = now.Add(11 * time.Minute)
	if _, ok := s.Get(id); ok {
		t.Error("an idle session lives on")
	}
	id, _ = s.Create("ivan", 3)
	s.SetFlash(id, Flash{Kind: "ok", Text: "done"})
	if f := s.TakeFlash(id); f == nil || f.Text != "done" {
		t.Errorf("flash %v", f)
	}
	if f := s.TakeFlash(id); f != nil {
		t.Errorf("a flash shows twice")
	}
	s.Delete(id)
	if _, ok := s.Get(id); ok || s.Len() != 0 {
		t.Errorf("after sign-out: live %v, %d sessions", ok, s.Len())
	}
	if _, ok := s.Get(""); ok {
		t.Error("an empty id finds a session")
	}
	s.limit = 3
	for i := range 5 {
		now = now.Add(time.Second)
		s.Create(fmt.Sprint("p", i), 1)
	}
	if s.Len() != 3 {
		t.Errorf("%d sessions, limit 3", s.Len())
	}
	if !SameToken("abc", "abc") || SameToken("abc", "abd") || SameToken("", "") {
		t.Error("SameToken")
	}
}

func TestNegotiateAndAgo(t *testing.T) {
	for accept, want := range map[string]string{
		"": "en", "ru": "ru", "ru-RU,ru;q=0.9,en;q=0.8": "ru", "en-US,en;q=0.9,ru;q=0.8": "en",
		"de-DE,de;q=0.9,ru;q=0.5": "ru", "fr": "en", "en;q=0.1, ru;q=0.2": "ru",
	} {
		if got := Negotiate(accept); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", accept, got, want)
		}
	}
	for _, tt := range []struct {
		d         time.Duration
		lang, out string
	}{
		{2 * time.Second, "en", "just now"}, {90 * time.Second, "en", "1 min ago"}, {3 * time.Hour, "ru", "3 ч назад"},
		{72 * time.Hour, "en", "3 d ago"}, {-5 * time.Minute, "en", "in 5 min"},
	} {
		if got := Ago(tt.lang, t0.Add(-tt.d), t0); got != tt.out {
			t.Errorf("Ago(%v, %s) = %q, want %q", tt.d, tt.lang, got, tt.out)
		}
	}
}

// FuzzNegotiate: any Accept-Language header gives one of the console's languages.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "ru", "ru-RU,ru;q=0.9,en;q=0.8", "en;q=abc", ";;,,q=", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if got := Negotiate(accept); !Supported(got) {
			t.Fatalf("Negotiate(%q) = %q", accept, got)
		}
	})
}
