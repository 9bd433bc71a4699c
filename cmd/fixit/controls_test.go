package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/sim"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

const (
	annaToken = "anna-operator-token-0001"
	veraToken = "vera-viewer-token-000001"
)

// controlsServer is the server on a copy of simple_lead, with an operator (anna)
// and a viewer (vera).
func controlsServer(t *testing.T, dsn string) (*inproc, string) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile("../../flows.d/simple_lead_flow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "simple_lead_flow.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	in := newInproc(t, dir, dsn, sim.DefaultStart(), nil, func(c *config) {
		c.Operators = map[string]string{"anna": annaToken}
		c.Viewers = map[string]string{"vera": veraToken}
	})
	return in, dir
}

// call sends an admin API request with token and decodes the JSON answer.
func (in *inproc) call(method, path, token, body string) (int, map[string]any) {
	in.t.Helper()
	req, err := http.NewRequest(method, in.hs.URL+path, strings.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := testClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// send delivers a notification the builder made and waits for the pipeline.
func (in *inproc) send(d sim.Delivery, err error) {
	in.t.Helper()
	if err != nil {
		in.t.Fatal(err)
	}
	if err := in.deliver(d); err != nil {
		in.t.Fatal(err)
	}
	if err := in.quiet(); err != nil {
		in.t.Fatal(err)
	}
}

// TestControlsAPI walks every operator control through the admin API, with its
// answers for an unknown id (404), a control that does not fit the dialog (409)
// and a bad body (422), and checks the dialog's history names who did what.
func TestControlsAPI(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		in, dir := controlsServer(t, dsn)
		b := sim.NewBuilder(in.clk.Now)
		anna := sim.WhatsAppContact{Phone: "+79161234567", Name: "Анна"}
		in.send(b.WhatsAppText(anna, "Здравствуйте"))
		id := "1"
		ctl := func(token, control, body string) (int, map[string]any) {
			t.Helper()
			code, out := in.call("POST", "/api/v1/dialogs/"+id+"/"+control, token, body)
			if err := in.quiet(); err != nil {
				t.Fatal(err)
			}
			return code, out
		}
		steps := []struct {
			name, token, control, body string
			code                       int
			state, status, errPart     string
		}{
			{"a viewer may not", veraToken, "takeover", `{"reason":"x"}`, 403, "", "", "forbidden"},
			{"a takeover needs a reason", annaToken, "takeover", `{}`, 422, "", "", `"reason"`},
			{"unknown fields are refused", annaToken, "takeover", `{"reason":"x","whom":"me"}`, 422, "", "", "whom"},
			{"takeover", annaToken, "takeover", `{"reason":"the customer asked for a person"}`, 200, "ask_name", "handoff", ""},
			{"a second takeover does not fit", annaToken, "takeover", `{"reason":"again"}`, 409, "", "", "takeover needs an active dialog"},
			{"a message", annaToken, "messages", `{"text":"Здравствуйте, это Анна из сервиса"}`, 200, "ask_name", "handoff", ""},
			{"a message needs text", annaToken, "messages", `{}`, 422, "", "", `"text"`},
			{"handback to a state the flow lacks", annaToken, "handback", `{"state":"ask_nmae"}`, 422, "", "", `did you mean "ask_name"?`},
			{"handback", "", "handback", `{}`, 200, "ask_name", "active", ""},
			{"goto", annaToken, "goto", `{"state":"ask_problem","reason":"the name is known"}`, 200, "ask_problem", "active", ""},
			{"goto needs a state", annaToken, "goto", `{"reason":"x"}`, 422, "", "", `"state"`},
			{"close with a bad status", annaToken, "close", `{"status":"done","reason":"x"}`, 422, "", "", `"done" is not finished or abandoned`},
			{"close", annaToken, "close", `{"status":"abandoned","reason":"spam"}`, 200, "ask_problem", "abandoned", ""},
			{"nothing fits a closed dialog", annaToken, "goto", `{"state":"ask_name","reason":"x"}`, 409, "", "", "needs an active dialog"},
		}
		for _, st := range steps {
			token := st.token
			if token == "" {
				token = agreeAdmin // the administrator may too
			}
			code, out := ctl(token, st.control, st.body)
			if code != st.code {
				t.Fatalf("%s: %d %v, want %d", st.name, code, out, st.code)
			}
			if st.errPart != "" && !strings.Contains(fmt.Sprint(out["error"]), st.errPart) {
				t.Errorf("%s: error %q lacks %q", st.name, out["error"], st.errPart)
			}
			if st.state != "" && (out["state"] != st.state || out["status"] != st.status) {
				t.Errorf("%s: dialog %v/%v, want %s/%s", st.name, out["state"], out["status"], st.state, st.status)
			}
		}
		if code, _ := in.call("POST", "/api/v1/dialogs/999/takeover", annaToken, `{"reason":"x"}`); code != 404 {
			t.Errorf("an unknown dialog: %d, want 404", code)
		}
		// The operator's message went out on the dialog's channel; the history says
		// who did what, and the customer's message during the handoff is in it.
		if got := in.conn.Message(2); got == nil || got.Text != "Здравствуйте, это Анна из сервиса" {
			t.Errorf("the operator's message: %+v", got)
		}
		_, d := in.call("GET", "/api/v1/dialogs/"+id, veraToken, "")
		var ops []string
		for _, h := range d["history"].([]any) {
			hm := h.(map[string]any)
			if hm["kind"] == "operator" {
				det := hm["detail"].(map[string]any)
				ops = append(ops, fmt.Sprintf("%v:%v", det["operator"], det["control"]))
			}
		}
		if want := "anna:takeover anna:message admin:handback anna:goto anna:close"; strings.Join(ops, " ") != want {
			t.Errorf("operator lines %q, want %q", strings.Join(ops, " "), want)
		}

		// WhatsApp's window: after a day without the customer, only a template goes.
		in.send(b.WhatsAppText(anna, "Здравствуйте"))
		id = "2"
		in.clk.Set(in.clk.Now().Add(25 * time.Hour))
		if code, out := ctl(annaToken, "messages", `{"text":"Вы тут?"}`); code != 422 || !strings.Contains(fmt.Sprint(out["error"]), "24-hour") {
			t.Errorf("a text outside the window: %d %v", code, out)
		}
		if code, out := ctl(annaToken, "messages", `{"template":{"name":"service_followup","language":"ru","params":["1"]}}`); code != 200 {
			t.Errorf("a template outside the window: %d %v", code, out)
		}

		// An action that failed for good is queued again, with the same id.
		in.mocks.Once("okdesk.create_issue", sim.Mock{Fail: &sim.Failure{Code: "bad_request", Message: "contact is invalid", Status: 422}})
		carl := sim.WhatsAppContact{Phone: "+79160000003", Name: "Карл"}
		in.send(b.WhatsAppText(carl, "Здравствуйте"))
		in.send(b.WhatsAppText(carl, "Карл"))
		in.send(b.WhatsAppText(carl, "Течёт кондиционер"))
		_, list := in.call("GET", "/api/v1/outbox?status=failed", annaToken, "")
		items := list["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("failed items: %v", items)
		}
		itemID := fmt.Sprint(items[0].(map[string]any)["id"])
		if code, _ := in.call("POST", "/api/v1/outbox/"+itemID+"/retry", veraToken, ""); code != 403 {
			t.Errorf("a viewer retried: %d", code)
		}
		code, out := in.call("POST", "/api/v1/outbox/"+itemID+"/retry", annaToken, "")
		if code != 200 || out["status"] != "pending" || out["requeues"] != 1.0 {
			t.Fatalf("retry: %d %v", code, out)
		}
		if err := in.quiet(); err != nil {
			t.Fatal(err)
		}
		_, out = in.call("GET", "/api/v1/outbox?status=done&limit=100", annaToken, "")
		found := false
		for _, it := range out["items"].([]any) {
			found = found || fmt.Sprint(it.(map[string]any)["id"]) == itemID
		}
		if !found {
			t.Errorf("the retried item is not done")
		}
		if code, _ := in.call("POST", "/api/v1/outbox/"+itemID+"/retry", annaToken, ""); code != 409 {
			t.Errorf("retry of a done item: %d, want 409", code)
		}
		if code, _ := in.call("POST", "/api/v1/outbox/99999/retry", annaToken, ""); code != 404 {
			t.Errorf("retry of an unknown item: %d, want 404", code)
		}

		// An unrouted event is routed again after a flow that takes it is loaded.
		in.send(b.TelegramText(sim.TelegramChat{ChatID: "42", Name: "Тг"}, "привет"))
		_, list = in.call("GET", "/api/v1/events?status=unrouted", annaToken, "")
		evs := list["items"].([]any)
		if len(evs) != 1 {
			t.Fatalf("unrouted events: %v", evs)
		}
		evID := fmt.Sprint(evs[0].(map[string]any)["id"])
		if err := os.WriteFile(filepath.Join(dir, "tg.yaml"), []byte("flow: tg\nstart: telegram.message\ninitial: hi\n"+
			"states:\n  hi:\n    enter: [ { send: \"Привет из Telegram\" } ]\n    on: { telegram.message: [ { goto: done } ] }\n  done: { final: true }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _ := in.call("POST", "/api/v1/reload", annaToken, ""); code != 403 {
			t.Errorf("an operator reloaded: %d, want 403", code)
		}
		if code, out := in.call("POST", "/api/v1/reload", agreeAdmin, ""); code != 200 || out["result"] != "ok" {
			t.Fatalf("reload: %d %v", code, out)
		}
		if code, out := in.call("POST", "/api/v1/events/"+evID+"/redrive", annaToken, ""); code != 200 || out["status"] != "pending" {
			t.Fatalf("redrive: %d %v", code, out)
		}
		if err := in.quiet(); err != nil {
			t.Fatal(err)
		}
		_, list = in.call("GET", "/api/v1/dialogs?flow=tg", annaToken, "")
		if len(list["items"].([]any)) != 1 {
			t.Errorf("the redriven event started no tg dialog: %v", list)
		}
		if code, _ := in.call("POST", "/api/v1/events/"+evID+"/redrive", annaToken, ""); code != 409 {
			t.Errorf("redrive of a processed event: %d, want 409", code)
		}
		if code, _ := in.call("POST", "/api/v1/events/abc/redrive", annaToken, ""); code != 404 {
			t.Errorf("redrive of a bad id: %d, want 404", code)
		}
	})
}

// TestStream: the live feed tells what a step did, filtered by dialog, and a client
// that reconnects with Last-Event-ID gets what it missed.
func TestStream(t *testing.T) {
	in, _ := controlsServer(t, "")
	b := sim.NewBuilder(in.clk.Now)
	open := func(query, last string) (*bufio.Reader, func()) {
		req, _ := http.NewRequest("GET", in.hs.URL+"/api/v1/stream"+query, nil)
		req.Header.Set("Authorization", "Bearer "+veraToken)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	// next reads the next event of a stream: its id, type and data.
	next := func(r *bufio.Reader) (id, typ string, data map[string]any) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(line[6:]), &data)
			case line == "" && typ != "":
				return id, typ, data
			}
		}
	}
	all, closeAll := open("", "")
	defer closeAll()
	mine, closeMine := open("?dialog=2", "")
	defer closeMine()
	anna := sim.WhatsAppContact{Phone: "+79161234567", Name: "Анна"}
	in.send(b.WhatsAppText(anna, "Здравствуйте")) // dialog 1
	in.send(b.WhatsAppText(sim.WhatsAppContact{Phone: "+79160000002"}, "Добрый день"))
	id, typ, data := next(all)
	if typ != "dialog" || data["dialog_id"] != 1.0 || data["data"].(map[string]any)["state"] != "ask_name" {
		t.Fatalf("first change: %s %v", typ, data)
	}
	_, typ, data = next(mine)
	if typ != "dialog" || data["dialog_id"] != 2.0 {
		t.Errorf("the filtered feed: %s %v", typ, data)
	}
	// Reconnecting after the first change gets the next ones.
	again, closeAgain := open("", id)
	defer closeAgain()
	id2, typ, _ := next(again)
	if id2 == id || typ == "" {
		t.Errorf("resumed with %s %s after %s", id2, typ, id)
	}
	// An id from another run of the server: the client is told to start over.
	stale, closeStale := open("", "99999")
	defer closeStale()
	if _, typ, _ := next(stale); typ != "reset" {
		t.Errorf("a stale Last-Event-ID: %s, want reset", typ)
	}
}
