package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

func TestAdminAuth(t *testing.T) {
	const challenge = `Bearer realm="fixit admin"`
	targets := []struct{ method, path string }{
		{"GET", "/api/v1/flows"}, {"POST", "/api/v1/reload"}, {"GET", "/api/v1/dialogs"}, {"GET", "/api/v1/dialogs/1"},
		{"GET", "/api/v1/events"}, {"POST", "/api/v1/events"}, {"GET", "/api/v1/outbox"},
	}
	tests := []struct {
		name   string
		off    bool
		auth   string
		status int
	}{
		{"off", true, "Bearer " + adminToken, 404},
		{"off, no token", true, "", 404},
		{"missing", false, "", 401},
		{"wrong", false, "Bearer " + adminToken + "x", 401},
		{"prefix of the token", false, "Bearer " + adminToken[:5], 401},
		{"basic scheme", false, basic("admin", adminToken), 401},
		{"right", false, "Bearer " + adminToken, 0},
		{"right, lower-case scheme", false, "bearer " + adminToken, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tt.off {
					c.AdminToken = ""
				}
			})
			for _, tg := range targets {
				var h []string
				if tt.auth != "" {
					h = []string{"Authorization", tt.auth}
				}
				rec := e.do(tg.method, tg.path, []byte(`{}`), h...)
				if tt.status == 0 {
					if rec.Code == 401 || rec.Code == 404 && tg.path != "/api/v1/dialogs/1" {
						t.Errorf("%s %s: status %d with the right token", tg.method, tg.path, rec.Code)
					}
					continue
				}
				if rec.Code != tt.status {
					t.Errorf("%s %s: status %d, want %d", tg.method, tg.path, rec.Code, tt.status)
					continue
				}
				msg := errorOf(t, rec)
				if got := rec.Header().Get("WWW-Authenticate"); (tt.status == 401) != (got == challenge) {
					t.Errorf("%s %s: WWW-Authenticate %q", tg.method, tg.path, got)
				}
				if tt.off && !strings.Contains(msg, "FIXIT_ADMIN_TOKEN") {
					t.Errorf("off: %q", msg)
				}
			}
			if tt.off {
				// Off means off: unknown admin paths and other methods are 404 too.
				for _, r := range []struct{ m, p string }{{"GET", "/api/v1/nope"}, {"DELETE", "/api/v1/flows"}, {"GET", "/api/v1"}} {
					if rec := e.do(r.m, r.p, nil); rec.Code != 404 || rec.Header().Get("Allow") != "" {
						t.Errorf("off: %s %s: %d, Allow %q", r.m, r.p, rec.Code, rec.Header().Get("Allow"))
					}
				}
			}
		})
	}
}

func TestAdminFlowsAndReload(t *testing.T) {
	e := newEnv(t)
	rec := e.admin("GET", "/api/v1/flows", nil)
	if rec.Code != 200 {
		t.Fatalf("flows: %d %s", rec.Code, rec.Body)
	}
	var got struct {
		Items []struct {
			Name, Description, File, Hash string
			States, Start                 []string
			Priority                      *int
		} `json:"items"`
		Next   json.RawMessage `json:"next"`
		Reload struct {
			At          *time.Time
			Result      string
			Diagnostics []map[string]any
			Added       []string
			Changed     []string
			Removed     []string
		} `json:"reload"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// The list shape of every admin list; the flow set is one page.
	if len(got.Items) != 1 || string(got.Next) != "null" {
		t.Fatalf("flows: %s", rec.Body)
	}
	f := got.Items[0]
	if f.Name != "demo" || f.Description != "test flow" || !strings.HasSuffix(f.File, "demo.yaml") || len(f.Hash) != 64 ||
		strings.Join(f.States, ",") != "ask,done" || strings.Join(f.Start, ",") != "waba.message" || f.Priority == nil {
		t.Errorf("flow: %+v", f)
	}
	if got.Reload.Result != "ok" || got.Reload.At == nil || !got.Reload.At.Equal(t0) || strings.Join(got.Reload.Added, ",") != "demo" ||
		got.Reload.Diagnostics == nil || got.Reload.Changed == nil || got.Reload.Removed == nil {
		t.Errorf("reload: %s", rec.Body)
	}

	rec = e.admin("POST", "/api/v1/reload", nil)
	if v := decode(t, rec); rec.Code != 200 || v["result"] != "unchanged" {
		t.Errorf("unchanged reload: %d %s", rec.Code, rec.Body)
	}
	e.writeFlow("new.yaml", strings.ReplaceAll(goodFlow, "flow: demo", "flow: second"))
	rec = e.admin("POST", "/api/v1/reload", nil)
	if v := decode(t, rec); rec.Code != 200 || v["result"] != "ok" || fmt.Sprint(v["added"]) != "[second]" {
		t.Errorf("ok reload: %d %s", rec.Code, rec.Body)
	}

	e.writeFlow("broken.yaml", "flow: broken\nstart: waba.message\ninitial: nowhere\nstates:\n  s: { final: true }\n")
	rec = e.admin("POST", "/api/v1/reload", nil)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("broken reload: %d %s", rec.Code, rec.Body)
	}
	var failed struct {
		Error       string `json:"error"`
		Result      string `json:"result"`
		Diagnostics []struct {
			File, Severity, Code, Message string
			Line, Col                     int
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &failed); err != nil {
		t.Fatal(err)
	}
	if failed.Result != "error" || !strings.Contains(failed.Error, "previous flow set keeps serving") || len(failed.Diagnostics) == 0 {
		t.Fatalf("broken reload answer: %s", rec.Body)
	}
	found := false
	for _, d := range failed.Diagnostics {
		if strings.HasSuffix(d.File, "broken.yaml") && d.Severity == "error" && d.Code == "unknown-state" && d.Line == 3 && d.Col > 0 && d.Message != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("no positioned unknown-state diagnostic for broken.yaml: %s", rec.Body)
	}
	rec = e.admin("GET", "/api/v1/flows", nil)
	if !strings.Contains(rec.Body.String(), `"result":"error"`) || !strings.Contains(rec.Body.String(), "unknown-state") ||
		!strings.Contains(rec.Body.String(), `"name":"second"`) {
		t.Errorf("flows after a failed reload must show the old set and the error: %s", rec.Body)
	}
}

// seed stores events, dialogs (with keys, history and timers) and outbox items
// through the real store.
type seeded struct {
	eventSeqs []int64 // oldest first
	dialogs   []int64 // oldest first
	outbox    []int64
}

func seed(t *testing.T, e *env) seeded {
	t.Helper()
	ctx := context.Background()
	var evs []event.Event
	sources := []string{"waba", "telegram", "okdesk", "onec", "waba", "waba"}
	for i, src := range sources {
		evs = append(evs, event.Event{Source: src, Type: src + ".message", At: t0, DedupeKey: fmt.Sprintf("seed:%d", i),
			Keys: []string{src + ":c" + strconv.Itoa(i)}, Contact: event.Contact{Channel: src, ID: "c" + strconv.Itoa(i)},
			Text: "hello", Data: map[string]any{"n": float64(i)}})
	}
	res, err := e.st.AppendEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	var s seeded
	for _, r := range res {
		s.eventSeqs = append(s.eventSeqs, r.Seq)
	}
	for i, status := range []dialog.Status{dialog.Active, dialog.Handoff, dialog.Active} {
		err := e.st.Step(ctx, func(tx store.StepTx) error {
			d := &store.Dialog{Dialog: dialog.Dialog{Flow: "demo", FlowHash: "abc", State: "ask", Status: status, Vars: map[string]any{"name": "x"}, Channel: "waba", ContactID: "c" + strconv.Itoa(i), Phone: "7916000000" + strconv.Itoa(i)}}
			if err := tx.CreateDialog(d); err != nil {
				return err
			}
			if err := tx.BindKey(d.ID, "waba:c"+strconv.Itoa(i)); err != nil {
				return err
			}
			seq := s.eventSeqs[i]
			if err := tx.AppendHistory(
				store.HistoryEntry{DialogID: d.ID, At: t0, Kind: dialog.HistEvent, EventSeq: &seq, FromState: "", ToState: "ask"},
				store.HistoryEntry{DialogID: d.ID, At: t0.Add(time.Second), Kind: dialog.HistGuard, EventSeq: &seq, FromState: "ask", ToState: "ask",
					Detail: json.RawMessage(`{"when":"len(event.text) > 1","result":true}`)},
			); err != nil {
				return err
			}
			if err := tx.ScheduleTimer(&store.Timer{DialogID: d.ID, State: "ask", Name: "after 24h", DueAt: t0.Add(24 * time.Hour), Status: store.TimerPending}); err != nil {
				return err
			}
			item := &store.OutboxItem{DialogID: &d.ID, Kind: "send", Params: json.RawMessage(`{"text":"hi"}`)}
			if err := tx.Enqueue(item); err != nil {
				return err
			}
			s.outbox = append(s.outbox, item.ID)
			s.dialogs = append(s.dialogs, d.ID)
			return tx.MarkEvent(seq, store.EventProcessed, &d.ID, "")
		})
		if err != nil {
			t.Fatalf("seed dialog %d: %v", i, err)
		}
	}
	claimed, err := e.st.ClaimOutbox(ctx, t0.Add(time.Hour), 1, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if err := e.st.FailOutbox(ctx, claimed[0].ID, store.OutboxDead, "http_500", "upstream said no"); err != nil {
		t.Fatal(err)
	}
	return s
}

type listPage struct {
	Items []map[string]any `json:"items"`
	Next  *string          `json:"next"`
}

func getList(t *testing.T, e *env, target string) listPage {
	t.Helper()
	rec := e.admin("GET", target, nil)
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	var p listPage
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Items == nil || !strings.Contains(rec.Body.String(), `"next":`) {
		t.Fatalf("GET %s: not a list answer (%v): %s", target, err, rec.Body)
	}
	return p
}

func ids(p listPage) []string {
	out := make([]string, len(p.Items))
	for i, it := range p.Items {
		out[i] = fmt.Sprint(it["id"])
	}
	return out
}

func TestAdminLists(t *testing.T) {
	e := newEnv(t)
	s := seed(t, e)
	tests := []struct {
		target string
		count  int
	}{
		{"/api/v1/events", 6},
		{"/api/v1/events?source=waba", 3},
		{"/api/v1/events?source=onec", 1},
		{"/api/v1/events?status=processed", 3},
		{"/api/v1/events?status=pending&source=waba", 2},
		{"/api/v1/events?status=failed", 0},
		{"/api/v1/dialogs", 3},
		{"/api/v1/dialogs?status=handoff", 1},
		{"/api/v1/dialogs?flow=demo&state=ask", 3},
		{"/api/v1/dialogs?flow=other", 0},
		{"/api/v1/dialogs?key=waba:c2", 1},
		{"/api/v1/outbox", 3},
		{"/api/v1/outbox?status=pending", 2},
		{"/api/v1/outbox?status=dead", 1},
		{"/api/v1/events?limit=2", 2},
		{"/api/v1/events?limit=99999", 6},
		{"/api/v1/events?limit=999999999999999999999999", 6},
	}
	for _, tt := range tests {
		if p := getList(t, e, tt.target); len(p.Items) != tt.count {
			t.Errorf("GET %s: %d items, want %d", tt.target, len(p.Items), tt.count)
		}
	}

	// Shapes.
	ev := getList(t, e, "/api/v1/events?source=onec").Items[0]
	for _, k := range []string{"id", "source", "type", "at", "received_at", "dedupe_key", "keys", "contact", "text", "data", "status", "dialog_id", "error", "attempts"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("event lacks %q: %v", k, ev)
		}
	}
	if ev["id"] != strconv.FormatInt(s.eventSeqs[3], 10) || ev["dedupe_key"] != "seed:3" || ev["dialog_id"] != nil {
		t.Errorf("event: %v", ev)
	}
	processed := getList(t, e, "/api/v1/events?status=processed").Items[0]
	if processed["dialog_id"] != float64(s.dialogs[2]) {
		t.Errorf("processed event: %v", processed)
	}
	d := getList(t, e, "/api/v1/dialogs?status=handoff").Items[0]
	for _, k := range []string{"id", "flow", "flow_hash", "state", "status", "vars", "channel", "contact_id", "phone", "created_at", "updated_at", "revision"} {
		if _, ok := d[k]; !ok {
			t.Errorf("dialog lacks %q: %v", k, d)
		}
	}
	if d["id"] != float64(s.dialogs[1]) || d["revision"] != float64(1) || d["vars"].(map[string]any)["name"] != "x" {
		t.Errorf("dialog: %v", d)
	}
	dead := getList(t, e, "/api/v1/outbox?status=dead").Items[0]
	for _, k := range []string{"id", "dialog_id", "kind", "params", "status", "attempts", "next_at", "last_error", "error_code", "result", "created_at", "updated_at"} {
		if _, ok := dead[k]; !ok {
			t.Errorf("outbox item lacks %q: %v", k, dead)
		}
	}
	if dead["last_error"] != "upstream said no" || dead["error_code"] != "http_500" || dead["attempts"] != float64(1) ||
		dead["params"].(map[string]any)["text"] != "hi" || dead["result"] != nil {
		t.Errorf("outbox item: %v", dead)
	}

	// limit=1 walks every list with its cursor to the end, newest first, each row once.
	for _, list := range []string{"/api/v1/events", "/api/v1/dialogs", "/api/v1/outbox", "/api/v1/events?source=waba"} {
		all := ids(getList(t, e, list))
		var walked []string
		target := list + sep(list) + "limit=1"
		for range 20 {
			p := getList(t, e, target)
			walked = append(walked, ids(p)...)
			if p.Next == nil {
				break
			}
			target = list + sep(list) + "limit=1&cursor=" + *p.Next
		}
		if strings.Join(walked, ",") != strings.Join(all, ",") {
			t.Errorf("%s: walked %v, want %v", list, walked, all)
		}
	}
}

func sep(target string) string {
	if strings.Contains(target, "?") {
		return "&"
	}
	return "?"
}

func TestAdminListErrors(t *testing.T) {
	e := newEnv(t)
	seed(t, e)
	tests := []struct {
		target   string
		errorHas string
	}{
		{"/api/v1/events?limit=0", "limit"},
		{"/api/v1/events?limit=-1", "limit"},
		{"/api/v1/events?limit=abc", "limit"},
		{"/api/v1/events?limit=1.5", "limit"},
		{"/api/v1/events?limit=", "limit"},
		{"/api/v1/dialogs?limit=-99999999999999999999999", "limit"},
		{"/api/v1/events?cursor=zzz", "cursor"},
		{"/api/v1/dialogs?cursor=zzz", "cursor"},
		{"/api/v1/outbox?cursor=zzz", "cursor"},
		{"/api/v1/events?status=done", "pending, processed, unrouted, failed"},
		{"/api/v1/events?source=whatsapp", "waba, telegram, okdesk, onec, timer, action"},
		{"/api/v1/dialogs?status=running", "active, handoff, finished, abandoned, failed"},
		{"/api/v1/outbox?status=processed", "pending, running, done, failed, dead"},
		{"/api/v1/dialogs/abc", "positive integer"},
		{"/api/v1/dialogs/0", "positive integer"},
		{"/api/v1/dialogs/99999999999999999999", "positive integer"},
	}
	for _, tt := range tests {
		rec := e.admin("GET", tt.target, nil)
		if rec.Code != 400 {
			t.Errorf("GET %s: status %d, want 400", tt.target, rec.Code)
			continue
		}
		if msg := errorOf(t, rec); !strings.Contains(msg, tt.errorHas) {
			t.Errorf("GET %s: %q should contain %q", tt.target, msg, tt.errorHas)
		}
	}
	// A cursor of one list is not valid for another.
	p := getList(t, e, "/api/v1/events?limit=1")
	if rec := e.admin("GET", "/api/v1/dialogs?cursor="+*p.Next, nil); rec.Code != 400 {
		t.Errorf("events cursor on dialogs: %d", rec.Code)
	}
}

func TestAdminDialogDetail(t *testing.T) {
	e := newEnv(t)
	s := seed(t, e)
	id := s.dialogs[0]
	rec := e.admin("GET", "/api/v1/dialogs/"+strconv.FormatInt(id, 10), nil)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var got struct {
		ID     int64  `json:"id"`
		Flow   string `json:"flow"`
		Status string `json:"status"`
		Phone  string `json:"phone"`
		Keys   []struct {
			Key    string `json:"key"`
			Active bool   `json:"active"`
		} `json:"keys"`
		History []struct {
			ID      int64           `json:"id"`
			At      time.Time       `json:"at"`
			Kind    string          `json:"kind"`
			EventID *string         `json:"event_id"`
			From    string          `json:"from"`
			To      string          `json:"to"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"history"`
		Timers []struct {
			ID     int64     `json:"id"`
			State  string    `json:"state"`
			Name   string    `json:"name"`
			DueAt  time.Time `json:"due_at"`
			Status string    `json:"status"`
		} `json:"timers"`
		Actions []struct {
			ID        int64  `json:"id"`
			Kind      string `json:"kind"`
			Status    string `json:"status"`
			ErrorCode string `json:"error_code"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Flow != "demo" || got.Status != "active" || got.Phone != "79160000000" {
		t.Errorf("dialog: %s", rec.Body)
	}
	if len(got.Keys) != 1 || got.Keys[0].Key != "waba:c0" || !got.Keys[0].Active {
		t.Errorf("keys: %+v", got.Keys)
	}
	wantEvent := strconv.FormatInt(s.eventSeqs[0], 10)
	if len(got.History) != 2 || got.History[0].Kind != "event" || got.History[0].EventID == nil || *got.History[0].EventID != wantEvent ||
		got.History[0].To != "ask" || string(got.History[0].Detail) != "null" ||
		got.History[1].Kind != "guard" || got.History[1].From != "ask" || !got.History[1].At.Equal(t0.Add(time.Second)) {
		t.Errorf("history: %s", rec.Body)
	}
	var detail map[string]any
	if err := json.Unmarshal(got.History[1].Detail, &detail); err != nil || detail["result"] != true {
		t.Errorf("history detail must be JSON, not a string: %s", got.History[1].Detail)
	}
	if len(got.Timers) != 1 || got.Timers[0].Name != "after 24h" || got.Timers[0].State != "ask" || got.Timers[0].Status != "pending" ||
		!got.Timers[0].DueAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("timers: %+v", got.Timers)
	}
	// The dialog's actions with their outcome: the seed's first send died.
	if len(got.Actions) != 1 || got.Actions[0].ID != s.outbox[0] || got.Actions[0].Kind != "send" ||
		got.Actions[0].Status != "dead" || got.Actions[0].ErrorCode != "http_500" {
		t.Errorf("actions: %+v", got.Actions)
	}
	// The outbox list filters by dialog too.
	p := getList(t, e, "/api/v1/outbox?dialog="+strconv.FormatInt(s.dialogs[1], 10))
	if got := ids(p); len(got) != 1 || got[0] != strconv.FormatInt(s.outbox[1], 10) {
		t.Errorf("outbox?dialog=: %v", got)
	}
	for _, bad := range []string{"0", "x", "-3"} {
		if rec := e.admin("GET", "/api/v1/outbox?dialog="+bad, nil); rec.Code != 400 {
			t.Errorf("outbox?dialog=%s: %d, want 400", bad, rec.Code)
		}
	}
	rec = e.admin("GET", "/api/v1/dialogs/424242", nil)
	if rec.Code != 404 || errorOf(t, rec) != "dialog 424242 not found" {
		t.Errorf("absent dialog: %d %s", rec.Code, rec.Body)
	}
}

func TestAdminInjectEvent(t *testing.T) {
	var e *env
	e = newEnv(t, func(c *Config) {
		c.Inbox = InboxFunc(func(ctx context.Context, evs []event.Event) ([]store.AppendResult, error) {
			return e.st.AppendEvents(ctx, evs)
		})
	})
	body := `{"source":"okdesk","type":"okdesk.new_ticket_status","keys":["okdesk:issue:1542"],"dedupe_key":"test:1",` +
		`"at":"2026-11-29T10:00:00Z","data":{"new_status":"completed"}}`
	for i, wantDup := range []bool{false, true} {
		rec := e.admin("POST", "/api/v1/events", []byte(body))
		if rec.Code != 200 {
			t.Fatalf("inject %d: %d %s", i, rec.Code, rec.Body)
		}
		v := decode(t, rec)
		if id, _ := v["id"].(string); id == "" || v["duplicate"] != wantDup || len(v) != 2 {
			t.Errorf("inject %d: %s", i, rec.Body)
		}
	}
	rec := e.admin("POST", "/api/v1/events", []byte(`{"source":"timer","type":"timer","text":"x"}`))
	if rec.Code != 200 {
		t.Fatalf("minimal inject: %d %s", rec.Code, rec.Body)
	}
	p := getList(t, e, "/api/v1/events")
	if len(p.Items) != 2 {
		t.Fatalf("stored %d events, want 2", len(p.Items))
	}
	minimal, full := p.Items[0], p.Items[1]
	if dk, _ := minimal["dedupe_key"].(string); !strings.HasPrefix(dk, "inject:") || len(dk) < len("inject:")+16 {
		t.Errorf("generated dedupe key %q", dk)
	}
	if minimal["at"] != t0.Format(time.RFC3339) || minimal["status"] != "pending" {
		t.Errorf("minimal: %v", minimal)
	}
	if full["type"] != "okdesk.new_ticket_status" || full["at"] != "2026-11-29T10:00:00Z" ||
		fmt.Sprint(full["keys"]) != "[okdesk:issue:1542]" || full["data"].(map[string]any)["new_status"] != "completed" {
		t.Errorf("full: %v", full)
	}

	bad := []struct{ body, errorHas string }{
		{`{"type":"waba.message"}`, `"source"`},
		{`{"source":"","type":"waba.message"}`, `"source"`},
		{`{"source":"whatsapp","type":"waba.message"}`, "waba, telegram, okdesk, onec, timer, action"},
		{`{"source":"waba"}`, `"type"`},
		{`{"source":"waba","type":"okdesk.new_ticket"}`, `"type"`},
		{`{"source":"waba","type":"wabamessage"}`, `"type"`},
		{`{"source":"waba","type":"waba.message","colour":"red"}`, "colour"},
		{`{"source":"waba","type":"waba.message","at":"yesterday"}`, "bad JSON"},
		{`{"source":"waba",`, "bad JSON"},
		{`{"source":"waba","type":"waba.message"} {}`, "bad JSON"},
		{``, "bad JSON"},
	}
	for _, b := range bad {
		rec := e.admin("POST", "/api/v1/events", []byte(b.body))
		if rec.Code != 400 {
			t.Errorf("%s: status %d, want 400", b.body, rec.Code)
			continue
		}
		if msg := errorOf(t, rec); !strings.Contains(msg, b.errorHas) {
			t.Errorf("%s: %q should contain %q", b.body, msg, b.errorHas)
		}
	}
	over := paddedJSON(`"source":"waba","type":"waba.message",`, int(DefaultMaxBody)+1)
	if rec := e.admin("POST", "/api/v1/events", over); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize inject: %d", rec.Code)
	}
}

func TestAdminInjectStoreFailure(t *testing.T) {
	e := newEnv(t)
	rec := e.admin("POST", "/api/v1/events", []byte(`{"source":"waba","type":"waba.message"}`))
	if rec.Code != 200 || testutil.ToFloat64(e.m.EventsIn.WithLabelValues("waba", "waba.message", "stored")) != 1 {
		t.Fatalf("inject: %d %s", rec.Code, rec.Body)
	}
	e.inbox.fail(errors.New("database is locked"))
	rec = e.admin("POST", "/api/v1/events", []byte(`{"source":"waba","type":"waba.message"}`))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(errorOf(t, rec), "locked") {
		t.Errorf("inject with the inbox down: %d %s", rec.Code, rec.Body)
	}
}
