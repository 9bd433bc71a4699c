package engine

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/engine/event"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func mustFlow(t testing.TB, src string) *Flow {
	t.Helper()
	fs, diags := testLoader.Compile([]File{{Name: "test.yaml", Data: []byte(src)}})
	if fs == nil {
		t.Fatalf("flow does not compile:\n%s", diagText(diags))
	}
	return fs.Flows()[0]
}

func diagText(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

func waText(text string) *event.Event {
	return &event.Event{ID: "1", Source: "waba", Type: "waba.message", Text: text,
		Keys:    []string{"waba:79161234567", "phone:79161234567"},
		Contact: event.Contact{Channel: "waba", ID: "79161234567", Phone: "79161234567", Name: "Анна"},
		Data:    map[string]any{"kind": "text"}}
}

func ev(typ string, data map[string]any) *event.Event {
	src := strings.SplitN(typ, ".", 2)[0]
	return &event.Event{ID: "2", Source: src, Type: typ, Data: data}
}

// start starts a dialog of f and fails the test on error.
func start(t *testing.T, m *Machine, f *Flow, e *event.Event) Result {
	t.Helper()
	r := m.Start(f, 1, e, t0)
	if r.Err != nil {
		t.Fatalf("start: %v", r.Err)
	}
	return r
}

func texts(effects []Effect) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == "send" {
			out = append(out, Stringify(e.Params["text"]))
		} else {
			out = append(out, e.Kind)
		}
	}
	return out
}

func histKinds(h []HistoryEntry) []string {
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = string(e.Kind)
	}
	return out
}

const leadFlow = `
flow: lead
start: { on: waba.message }
initial: ask_name
vars: { name: "", tries: 0, issue: "" }
states:
  ask_name:
    enter: [ { send: "Как вас зовут?" } ]
    on:
      waba.message:
        - when: letters(event.text) >= 2
          set: { name: squash(event.text), tries: 0 }
          goto: ask_problem
        - when: vars.tries >= 2
          goto: operator
        - set: { tries: vars.tries + 1 }
          send: "Ещё раз, пожалуйста (${vars.tries})"
    after:
      - in: 24h
        send: "Напоминание"
      - in: 48h
        goto: abandoned
    ignore: [waba.status]
  ask_problem:
    enter: [ { send: "${vars.name}, что случилось?" } ]
    on:
      waba.message:
        - okdesk.create_issue: { title: "WhatsApp: ${vars.name}", description: "${event.text}" }
          goto: wait_issue
  wait_issue:
    on:
      action.done:
        - when: event.data.action == "okdesk.create_issue"
          set: { issue: string(event.data.id) }
          bind: "okdesk:issue:${event.data.id}"
          send: "Заявка №${event.data.id}"
          goto: open
      action.failed:
        - handoff: { reason: "okdesk failed", until: okdesk.new_ticket_status }
  open:
    on:
      okdesk.new_ticket_status:
        - when: event.data.new_status in ["completed", "closed"]
          goto: done
  operator:
    enter: [ { handoff: "no name" } ]
    on:
      waba.message: [ { goto: done } ]
  done: { final: true }
  abandoned: { final: true, status: abandoned }
`

func TestStart(t *testing.T) {
	f := mustFlow(t, leadFlow)
	m := NewMachine()
	r := start(t, m, f, waText("Здравствуйте"))
	d := r.Dialog
	if d.State != "ask_name" || d.Status != dialog.Active || d.Flow != "lead" || d.FlowHash != f.Hash {
		t.Fatalf("dialog = %+v", d)
	}
	if d.Channel != "waba" || d.ContactID != "79161234567" || d.Phone != "79161234567" || !d.CreatedAt.Equal(t0) {
		t.Errorf("contact not taken from the starting event: %+v", d)
	}
	if got := texts(r.Effects); !reflect.DeepEqual(got, []string{"Как вас зовут?"}) {
		t.Errorf("effects = %v", got)
	}
	if !reflect.DeepEqual(r.Binds, []string{"waba:79161234567", "phone:79161234567"}) {
		t.Errorf("binds = %v", r.Binds)
	}
	want := []TimerSet{{State: "ask_name", Name: "24h#0", Due: t0.Add(24 * time.Hour)}, {State: "ask_name", Name: "48h#1", Due: t0.Add(48 * time.Hour)}}
	if !reflect.DeepEqual(r.Timers, want) {
		t.Errorf("timers = %+v", r.Timers)
	}
	// The starting event is not dispatched to the initial state's handlers.
	if d.Vars["name"] != "" || d.Vars["tries"] != float64(0) {
		t.Errorf("vars = %v", d.Vars)
	}
	if got := histKinds(r.History); !reflect.DeepEqual(got, []string{"event", "transition", "action"}) {
		t.Errorf("history = %v", got)
	}
}

func TestStepBranches(t *testing.T) {
	f := mustFlow(t, leadFlow)
	m := NewMachine()
	base := start(t, m, f, waText("hi")).Dialog

	tests := []struct {
		name      string
		dialog    func(dialog.Dialog) dialog.Dialog
		event     *event.Event
		state     string
		status    dialog.Status
		vars      map[string]any
		effects   []string
		cancelled []string
		outcome   Outcome
		history   []string
	}{
		{name: "first true guard wins, set then goto enters next state",
			event: waText("  Анна   Смирнова "), state: "ask_problem", status: dialog.Active,
			vars:    map[string]any{"name": "Анна Смирнова", "tries": float64(0), "issue": ""},
			effects: []string{"Анна Смирнова, что случилось?"}, cancelled: []string{"ask_name"},
			outcome: Transitioned, history: []string{"event", "guard", "set", "set", "transition", "action"}},
		{name: "catch-all branch stays without re-entering; set is sequential",
			event: waText("1"), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(1), "issue": ""},
			effects: []string{"Ещё раз, пожалуйста (1)"},
			outcome: Stayed, history: []string{"event", "guard", "guard", "guard", "set", "action"}},
		{name: "third failure goes to operator and hands off",
			dialog: func(d dialog.Dialog) dialog.Dialog {
				d.Vars = map[string]any{"name": "", "tries": float64(2), "issue": ""}
				return d
			},
			event: waText("?"), state: "operator", status: dialog.Handoff,
			vars: map[string]any{"name": "", "tries": float64(2), "issue": ""}, cancelled: []string{"ask_name"},
			outcome: Transitioned, history: []string{"event", "guard", "guard", "transition", "handoff"}},
		{name: "ignored event type",
			event: ev("waba.status", nil), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Ignored, history: []string{"event", "ignored"}},
		{name: "unhandled event type is recorded, never dropped",
			event: ev("okdesk.new_comment", nil), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Unhandled, history: []string{"event", "unhandled"}},
		{name: "action.done without a handler is ignored",
			event: ev("action.done", map[string]any{"action": "send"}), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Ignored, history: []string{"event", "ignored"}},
		{name: "action.failed without a handler is unhandled",
			event: ev("action.failed", map[string]any{"action": "send"}), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Unhandled, history: []string{"event", "unhandled"}},
		{name: "timer without goto runs its actions and stays",
			event: ev("timer", map[string]any{"timer": "24h#0", "state": "ask_name"}), state: "ask_name", status: dialog.Active,
			vars: map[string]any{"name": "", "tries": float64(0), "issue": ""}, effects: []string{"Напоминание"},
			outcome: Stayed, history: []string{"event", "timer", "guard", "action"}},
		{name: "timer with goto ends the dialog as abandoned",
			event: ev("timer", map[string]any{"timer": "48h#1", "state": "ask_name"}), state: "abandoned", status: dialog.Abandoned,
			vars: map[string]any{"name": "", "tries": float64(0), "issue": ""}, cancelled: []string{"ask_name", "abandoned"},
			outcome: Transitioned, history: []string{"event", "timer", "guard", "transition", "end"}},
		{name: "stale timer of a state the dialog left is ignored",
			event: ev("timer", map[string]any{"timer": "24h#0", "state": "ask_problem"}), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Ignored, history: []string{"event", "ignored"}},
		{name: "timer unknown to this flow version is unhandled",
			event: ev("timer", map[string]any{"timer": "1h#9", "state": "ask_name"}), state: "ask_name", status: dialog.Active,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Unhandled, history: []string{"event", "unhandled"}},
		{name: "ended dialog records the event as unhandled",
			dialog: func(d dialog.Dialog) dialog.Dialog { d.State, d.Status = "done", dialog.Finished; return d },
			event:  waText("hello"), state: "done", status: dialog.Finished,
			vars:    map[string]any{"name": "", "tries": float64(0), "issue": ""},
			outcome: Unhandled, history: []string{"event", "unhandled"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			d.Vars = copyVars(base.Vars)
			if tc.dialog != nil {
				d = tc.dialog(d)
			}
			r := m.Step(f, d, tc.event, t0.Add(time.Hour))
			if r.Err != nil {
				t.Fatalf("step: %v", r.Err)
			}
			if r.Dialog.State != tc.state || r.Dialog.Status != tc.status {
				t.Errorf("state/status = %s/%s, want %s/%s", r.Dialog.State, r.Dialog.Status, tc.state, tc.status)
			}
			if !reflect.DeepEqual(r.Dialog.Vars, tc.vars) {
				t.Errorf("vars = %v, want %v", r.Dialog.Vars, tc.vars)
			}
			if got := texts(r.Effects); !reflect.DeepEqual(got, tc.effects) {
				t.Errorf("effects = %q, want %q", got, tc.effects)
			}
			if !reflect.DeepEqual(r.CancelStates, tc.cancelled) {
				t.Errorf("cancelled = %v, want %v", r.CancelStates, tc.cancelled)
			}
			if r.Outcome != tc.outcome {
				t.Errorf("outcome = %v, want %v", r.Outcome, tc.outcome)
			}
			if got := histKinds(r.History); !reflect.DeepEqual(got, tc.history) {
				t.Errorf("history = %v, want %v", got, tc.history)
			}
			if d.Vars["tries"] != base.Vars["tries"] && tc.dialog == nil {
				t.Errorf("step mutated its input dialog's vars")
			}
		})
	}
}

// TestTakenBranchIsRecorded: the history names the branch each step took, guarded
// or not, by its place in the file (what coverage and the admin API show).
func TestTakenBranchIsRecorded(t *testing.T) {
	f := mustFlow(t, leadFlow)
	m := NewMachine()
	d := start(t, m, f, waText("hi")).Dialog
	r := m.Step(f, d, waText("1"), t0)
	var taken []map[string]any
	for _, h := range r.History {
		if h.Kind == dialog.HistGuard && h.Detail["result"] == true {
			taken = append(taken, h.Detail)
		}
	}
	catchAll := f.States["ask_name"].On["waba.message"][2]
	if len(taken) != 1 || taken[0]["line"] != catchAll.Pos.Line || taken[0]["col"] != catchAll.Pos.Col || taken[0]["when"] != "" {
		t.Errorf("taken branch = %v, want the catch-all at %d:%d", taken, catchAll.Pos.Line, catchAll.Pos.Col)
	}
}

func TestActionResultBindsAndTemplates(t *testing.T) {
	f := mustFlow(t, leadFlow)
	m := NewMachine()
	d := start(t, m, f, waText("hi")).Dialog
	d = m.Step(f, d, waText("Анна"), t0).Dialog
	r := m.Step(f, d, waText("Течёт кондиционер"), t0)
	if r.Dialog.State != "wait_issue" || len(r.Effects) != 1 {
		t.Fatalf("state %s effects %v", r.Dialog.State, r.Effects)
	}
	want := map[string]any{"title": "WhatsApp: Анна", "description": "Течёт кондиционер"}
	if !reflect.DeepEqual(r.Effects[0].Params, want) || r.Effects[0].Kind != "okdesk.create_issue" || r.Effects[0].State != "ask_problem" {
		t.Errorf("effect = %+v", r.Effects[0])
	}
	// An id arriving as a number renders without decimals, and the key is bound.
	r = m.Step(f, r.Dialog, ev("action.done", map[string]any{"action": "okdesk.create_issue", "id": float64(1542)}), t0)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Dialog.Vars["issue"] != "1542" || r.Dialog.State != "open" {
		t.Errorf("vars %v state %s", r.Dialog.Vars, r.Dialog.State)
	}
	if !reflect.DeepEqual(r.Binds, []string{"okdesk:issue:1542"}) || !contains(r.Dialog.Keys, "okdesk:issue:1542") {
		t.Errorf("binds %v keys %v", r.Binds, r.Dialog.Keys)
	}
	if got := texts(r.Effects); !reflect.DeepEqual(got, []string{"Заявка №1542"}) {
		t.Errorf("effects %v", got)
	}
	r = m.Step(f, r.Dialog, ev("okdesk.new_ticket_status", map[string]any{"new_status": "in_progress"}), t0)
	if r.Dialog.State != "open" || r.Outcome != Unhandled || len(r.Guards) != 1 || r.Guards[0].Result {
		t.Errorf("a false guard with no other branch must stay, unhandled with its guard: %s %s %+v", r.Dialog.State, r.Outcome, r.Guards)
	}
	r = m.Step(f, r.Dialog, ev("okdesk.new_ticket_status", map[string]any{"new_status": "completed"}), t0)
	if r.Dialog.State != "done" || r.Dialog.Status != dialog.Finished {
		t.Errorf("state %s status %s", r.Dialog.State, r.Dialog.Status)
	}
}

func TestHandoff(t *testing.T) {
	f := mustFlow(t, leadFlow)
	m := NewMachine()
	d := start(t, m, f, waText("hi")).Dialog
	d = m.Step(f, d, waText("Анна"), t0).Dialog
	d = m.Step(f, d, waText("Течёт"), t0).Dialog
	r := m.Step(f, d, ev("action.failed", map[string]any{"action": "okdesk.create_issue"}), t0)
	if r.Dialog.Status != dialog.Handoff || !reflect.DeepEqual(r.Dialog.HandoffUntil, []string{"okdesk.new_ticket_status"}) {
		t.Fatalf("status %s until %v", r.Dialog.Status, r.Dialog.HandoffUntil)
	}
	// While handed off, customer messages are kept in history but the bot is silent.
	r2 := m.Step(f, r.Dialog, waText("алло?"), t0)
	if len(r2.Effects) != 0 || r2.Dialog.Status != dialog.Handoff || !reflect.DeepEqual(histKinds(r2.History), []string{"event", "handoff"}) {
		t.Errorf("handoff not silent: effects %v history %v", r2.Effects, histKinds(r2.History))
	}
	// Action results still reach the dialog during a handoff.
	r3 := m.Step(f, r.Dialog, ev("action.done", map[string]any{"action": "okdesk.create_issue", "id": "7"}), t0)
	if r3.Dialog.State != "open" || r3.Dialog.Vars["issue"] != "7" {
		t.Errorf("action.done during handoff: state %s vars %v", r3.Dialog.State, r3.Dialog.Vars)
	}
	// The `until` event hands the dialog back and is then processed.
	d2 := r.Dialog
	d2.State = "open"
	r4 := m.Step(f, d2, ev("okdesk.new_ticket_status", map[string]any{"new_status": "closed"}), t0)
	if r4.Dialog.Status != dialog.Finished || r4.Dialog.HandoffUntil != nil {
		t.Errorf("until event: status %s", r4.Dialog.Status)
	}
}

const alwaysFlow = `
flow: router
start: { on: [telegram.message] }
initial: route
vars: { n: 0, kind: "" }
states:
  route:
    enter: [ { log: "routing ${event.text}" } ]
    always:
      - when: event.text == "loop"
        set: { n: vars.n + 1 }
        goto: again
      - when: hasPrefix(event.text, "/")
        set: { kind: '"command"' }
        send: "command"
        goto: command
      - goto: chat
  again:
    always:
      - when: vars.n < 1000
        set: { n: vars.n + 1 }
        goto: route
      - goto: chat
  command:
    enter: [ { send: { text: "Выберите", buttons: [ { id: a, title: "A" }, "B" ] } } ]
    on: { telegram.callback: [ { goto: chat } ] }
  chat:
    on:
      telegram.message:
        - when: event.data.missing.field == 1
          goto: command
        - send: "${event.data.missing.deeper}"
        - goto: route
`

func TestAlwaysAndStepLimit(t *testing.T) {
	f := mustFlow(t, alwaysFlow)
	m := NewMachine()
	tg := func(text string) *event.Event {
		return &event.Event{ID: "9", Source: "telegram", Type: "telegram.message", Text: text,
			Contact: event.Contact{Channel: "telegram", ID: "5"}, Keys: []string{"telegram:5"}, Data: map[string]any{}}
	}
	r := m.Start(f, 1, tg("/start"), t0)
	if r.Err != nil || r.Dialog.State != "command" || r.Dialog.Vars["kind"] != "command" {
		t.Fatalf("always chain: err %v state %s vars %v", r.Err, r.Dialog.State, r.Dialog.Vars)
	}
	if got := texts(r.Effects); !reflect.DeepEqual(got, []string{"command", "Выберите"}) {
		t.Errorf("effects %v", got)
	}
	buttons := r.Effects[1].Params["buttons"]
	wantButtons := []any{map[string]any{"id": "a", "title": "A"}, map[string]any{"id": "B", "title": "B"}}
	if !reflect.DeepEqual(buttons, wantButtons) {
		t.Errorf("buttons = %#v", buttons)
	}
	if r.History[2].Kind != dialog.HistLog || r.History[2].Detail["message"] != "routing /start" {
		t.Errorf("log entry = %+v", r.History[2])
	}
	r = m.Start(f, 1, tg("plain"), t0)
	if r.Dialog.State != "chat" {
		t.Errorf("fallthrough: %s", r.Dialog.State)
	}
	// A guarded loop that does not end within MaxSteps is an error; nothing is kept.
	r = m.Start(f, 1, tg("loop"), t0)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "transitions without waiting") {
		t.Fatalf("step limit not enforced: %v", r.Err)
	}
	if len(r.Effects) != 0 || len(r.Timers) != 0 || r.History[len(r.History)-1].Kind != dialog.HistError {
		t.Errorf("failed start kept effects or lacks the error entry: %+v", r)
	}
}

func TestRuntimeErrorsDoNotCorrupt(t *testing.T) {
	f := mustFlow(t, alwaysFlow)
	m := NewMachine()
	d := dialog.Dialog{ID: 1, Flow: f.Name, FlowHash: f.Hash, State: "chat", Status: dialog.Active, Vars: map[string]any{"n": float64(3), "kind": "x"}}
	e := &event.Event{Type: "telegram.message", Source: "telegram", Data: map[string]any{}}
	r := m.Step(f, d, e, t0)
	// event.data.missing is nil: nil.field fails at run time in the guard.
	if r.Err == nil {
		t.Fatal("expected a runtime guard error")
	}
	if !reflect.DeepEqual(r.Dialog, d) || len(r.Effects) != 0 || len(r.Binds) != 0 {
		t.Errorf("dialog changed on error: %+v", r.Dialog)
	}
	if k := histKinds(r.History); k[len(k)-1] != string(dialog.HistError) {
		t.Errorf("no error in history: %v", k)
	}
	// A state that the flow version does not have is an error too.
	d.State = "gone"
	if r := m.Step(f, d, e, t0); r.Err == nil || r.Dialog.State != "gone" {
		t.Errorf("missing state: %v", r.Err)
	}
}

func TestStartFlowSelection(t *testing.T) {
	files := []File{
		{Name: "a.yaml", Data: []byte("flow: a\nstart: { on: waba.message, when: event.text == \"a\" }\ninitial: s\nstates: { s: { final: true } }\n")},
		{Name: "b.yaml", Data: []byte("flow: b\nstart: waba.message\ninitial: s\nstates: { s: { final: true } }\n")},
		{Name: "c.yaml", Data: []byte("flow: c\npriority: 10\nstart: { on: waba.message, when: event.data.vip == true }\ninitial: s\nstates: { s: { final: true } }\n")},
		{Name: "d.yaml", Data: []byte("flow: d\nstart: telegram.message\ninitial: s\nstates: { s: { final: true } }\n")},
	}
	fs, diags := testLoader.Compile(files)
	if fs == nil {
		t.Fatal(diagText(diags))
	}
	m := NewMachine()
	tests := []struct {
		ev   *event.Event
		want string
	}{
		{&event.Event{Type: "waba.message", Text: "a", Data: map[string]any{}}, "a"},
		{&event.Event{Type: "waba.message", Text: "x", Data: map[string]any{}}, "b"},
		{&event.Event{Type: "waba.message", Text: "a", Data: map[string]any{"vip": true}}, "c"},
		{&event.Event{Type: "telegram.message", Data: map[string]any{}}, "d"},
		{&event.Event{Type: "okdesk.new_ticket", Data: map[string]any{}}, ""},
	}
	for _, tc := range tests {
		f, errs := m.StartFlow(fs, tc.ev, t0)
		got := ""
		if f != nil {
			got = f.Name
		}
		if got != tc.want || len(errs) != 0 {
			t.Errorf("%s %q %v: started %q (errs %v), want %q", tc.ev.Type, tc.ev.Text, tc.ev.Data, got, errs, tc.want)
		}
	}
}

func TestStepIsDeterministic(t *testing.T) {
	f := mustFlow(t, leadFlow)
	m1, m2 := NewMachine(), NewMachine()
	d := start(t, m1, f, waText("hi")).Dialog
	a := m1.Step(f, d, waText("Анна"), t0)
	b := m2.Step(f, d, waText("Анна"), t0)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same inputs, different results:\n%+v\n%+v", a, b)
	}
}

func TestStringify(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{nil, ""}, {"x", "x"}, {float64(1542), "1542"}, {1.5, "1.5"}, {3, "3"}, {int64(-2), "-2"}, {true, "true"},
		{t0, "2026-11-29T10:00:00Z"}, {90 * time.Second, "1m30s"}, {[]any{"a"}, "[a]"},
	}
	for _, c := range cases {
		if got := Stringify(c.in); got != c.want {
			t.Errorf("Stringify(%#v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHelpers(t *testing.T) {
	f := mustFlow(t, `
flow: h
start: waba.message
initial: s
vars: { out: "" }
states:
  s:
    enter:
      - send: "${phone(event.text)}|${is_phone(event.text)}|${letters(event.text)}|${digits(event.text)}|${squash(event.text)}|${truncate(\"abcdef\", 4)}|${match(event.text, \"^\\\\+7\")}|${find(event.text, \"\\\\((\\\\d+)\\\\)\")}|${format_time(in_zone(now, \"Europe/Moscow\"), \"15:04\")}|${hours_since(parse_time(\"2026-11-29T08:00:00Z\"), now)}|${trim(\"  x \")}"
    on: { waba.message: [ { goto: s } ] }
`)
	r := NewMachine().Start(f, 1, &event.Event{Type: "waba.message", Text: "+7 (916) 123-45-67 ", Data: map[string]any{}}, t0)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	want := "79161234567|true|0|79161234567|+7 (916) 123-45-67|abc…|true|916|13:00|2|x"
	if got := r.Effects[0].Params["text"]; got != want {
		t.Errorf("helpers:\n got %q\nwant %q", got, want)
	}
}

func TestFlowEnv(t *testing.T) {
	env := FlowEnv([]string{"FLOW_DONE_TEMPLATE=issue_done_v2", "APP_SECRET=s3cret", "PATH=/bin", "FLOW_EMPTY="})
	if len(env) != 1 || env["FLOW_DONE_TEMPLATE"] != "issue_done_v2" || env["APP_SECRET"] != nil {
		t.Fatalf("FlowEnv = %v", env)
	}
	f := mustFlow(t, `
flow: e
start: waba.message
initial: s
states:
  s:
    enter:
      - send: "${env.FLOW_DONE_TEMPLATE}|${env.FLOW_MISSING ?? \"default\"}|${env.FLOW_EMPTY ?? \"x\"}"
    on: { waba.message: [ { goto: s } ] }
`)
	r := NewMachine().WithEnv(env).Start(f, 1, &event.Event{Type: "waba.message", Data: map[string]any{}}, t0)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := r.Effects[0].Params["text"]; got != "issue_done_v2|default|x" {
		t.Errorf("env in templates: %q", got)
	}
}

// TestParseTimeZones: a time without a zone (1C writes 2026-05-10T00:00:00) is read
// in the flow's timezone, else in the loader's (FIXIT_TZ), else UTC; a text that is
// not a time fails the step, never giving the zero time.
func TestParseTimeZones(t *testing.T) {
	flow := func(tz string) string {
		return "flow: pt\n" + tz + "start: waba.message\ninitial: s\nvars: { at: \"\", ok: false }\nstates:\n  s:\n    on:\n      waba.message:\n" +
			"        - set: { ok: is_time(event.text), at: 'vars.ok ? format_time(parse_time(event.text), \"2006-01-02T15:04:05Z07:00\") : \"\"' }\n"
	}
	moscow, err := testLoader.WithZone("Asia/Yekaterinburg")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		loader *Loader
		tz     string
		text   string
		want   string
	}{
		{"zone-less in UTC by default", testLoader, "", "2026-05-10T00:00:00", "2026-05-10T00:00:00Z"},
		{"zone-less in the flow's timezone", testLoader, "timezone: Europe/Moscow\n", "2026-05-10T00:00:00", "2026-05-10T00:00:00+03:00"},
		{"zone-less in the loader's zone", moscow, "", "2026-05-10T00:00:00", "2026-05-10T00:00:00+05:00"},
		{"the flow's timezone wins", moscow, "timezone: Europe/Moscow\n", "2026-05-10 09:30", "2026-05-10T09:30:00+03:00"},
		{"a date alone", testLoader, "timezone: Europe/Moscow\n", "2026-05-10", "2026-05-10T00:00:00+03:00"},
		{"an explicit zone is kept", moscow, "timezone: Europe/Moscow\n", "2026-05-10T00:00:00+01:00", "2026-05-10T00:00:00+01:00"},
		{"not a time", testLoader, "", "завтра", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, diags := tt.loader.Compile([]File{{Name: "pt.yaml", Data: []byte(flow(tt.tz))}})
			if fs == nil {
				t.Fatal(diagText(diags))
			}
			f := fs.Flows()[0]
			m := NewMachine()
			r := start(t, m, f, waText("start"))
			r = m.Step(f, r.Dialog, waText(tt.text), t0)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if got := r.Dialog.Vars["at"]; got != tt.want {
				t.Errorf("at = %v, want %q", got, tt.want)
			}
			if ok := r.Dialog.Vars["ok"]; ok != (tt.want != "") {
				t.Errorf("is_time = %v", ok)
			}
		})
	}
	// Without is_time first, a text that is not a time fails the step.
	fs, diags := testLoader.Compile([]File{{Name: "pt.yaml", Data: []byte("flow: pt\nstart: waba.message\ninitial: s\nvars: { at: \"\" }\nstates:\n  s:\n    on:\n      waba.message:\n        - set: { at: string(parse_time(event.text)) }\n")}})
	if fs == nil {
		t.Fatal(diagText(diags))
	}
	f := fs.Flows()[0]
	m := NewMachine()
	r := m.Step(f, start(t, m, f, waText("start")).Dialog, waText("завтра"), t0)
	if r.Err == nil || !strings.Contains(r.Err.Error(), `"завтра" is not a time`) {
		t.Errorf("err = %v, want a parse_time error", r.Err)
	}
	if _, err := testLoader.WithZone("Europe/Moskva"); err == nil {
		t.Errorf("WithZone accepted a zone that does not exist")
	}
}

// TestSplitFiles: a send of several files is one message per file, the text the
// first one's caption; other sends and actions stay as they are.
func TestSplitFiles(t *testing.T) {
	f1, f2 := map[string]any{"id": "f1"}, map[string]any{"id": "f2"}
	tests := []struct {
		name   string
		kind   string
		params map[string]any
		want   []map[string]any
	}{
		{"two files", "send", map[string]any{"file": []any{f1, nil, f2}, "text": "Файлы"},
			[]map[string]any{{"file": f1, "text": "Файлы"}, {"file": f2}}},
		{"one file in a list", "send", map[string]any{"file": []any{f1}, "text": "x"},
			[]map[string]any{{"file": []any{f1}, "text": "x"}}},
		{"one file", "send", map[string]any{"file": f1}, []map[string]any{{"file": f1}}},
		{"text only", "send", map[string]any{"text": "hi"}, []map[string]any{{"text": "hi"}}},
		{"not a send", "okdesk.comment", map[string]any{"file": []any{f1, f2}},
			[]map[string]any{{"file": []any{f1, f2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitFiles(tt.kind, tt.params); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitFiles = %v, want %v", got, tt.want)
			}
		})
	}
}
