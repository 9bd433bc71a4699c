package engine

import (
	"testing"

	"github.com/fixit-exchange/fixit/engine/event"
)

// TestContention loads sets of flows that would fight over an event, and sets
// that would not, and compares the set-level warnings.
func TestContention(t *testing.T) {
	const lead = `flow: lead
start: { on: [waba.message, okdesk.new_ticket] }
initial: a
states:
  a:
    enter: [ { send: "hi" } ]
    on: { waba.message: [ { goto: b } ] }
  b: { final: true }
`
	const guarded = `flow: vip
priority: 5
start:
  on: waba.message
  when: event.text == "vip"
initial: a
states:
  a: { final: true }
`
	const second = `flow: second
start: { on: [okdesk.new_ticket, waba.message] }
initial: a
states:
  a: { final: true }
`
	const invoice = `flow: invoice
start: { on: okdesk.new_ticket_status, alongside: true }
initial: a
states:
  a:
    ignore: [okdesk.new_comment]
    on: { okdesk.new_ticket_status: [ { goto: b } ] }
  b: { final: true }
`
	const echo = `flow: echo
start:
  on: waba.message
  alongside: true
initial: a
states:
  a:
    enter: [ { send: "me too" } ]
    always: [ { goto: b } ]
  b: { final: true }
`
	cases := []struct {
		name  string
		files []File
		want  string
	}{
		{"distinct starts", []File{{"a.yaml", []byte(lead)}, {"b.yaml", []byte(guarded)}, {"c.yaml", []byte(invoice)}}, ""},
		{"shadowed", []File{{"a.yaml", []byte(lead)}, {"b.yaml", []byte(second)}},
			"b.yaml:2:15: warning: start-shadowed flow second never starts on okdesk.new_ticket: flow lead (a.yaml) is tried first (same priority, its file name sorts first) and starts on every okdesk.new_ticket without `when`\n" +
				"    hint: give the first flow a `start.when` that leaves the other's events to it, or make one of them `alongside: true`\n" +
				"b.yaml:2:34: warning: start-shadowed flow second never starts on waba.message: flow lead (a.yaml) is tried first (same priority, its file name sorts first) and starts on every waba.message without `when`\n" +
				"    hint: give the first flow a `start.when` that leaves the other's events to it, or make one of them `alongside: true`\n"},
		{"alongside replies", []File{{"a.yaml", []byte(lead)}, {"e.yaml", []byte(echo)}},
			"e.yaml:4:14: warning: alongside-replies alongside flow echo sends on waba.message, which flow lead takes too: one customer message would get an answer from each\n" +
				"    hint: let only one of the flows reply, or start the alongside flow on another event\n"},
		{"alongside alone replies", []File{{"e.yaml", []byte(echo)}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, diags := testLoader.Compile(tc.files)
			if fs == nil {
				t.Fatalf("no flow set: %v", diags)
			}
			if got := formatDiags(diags); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestAlongsideSet checks what a set tells about its alongside flows: they never
// start ordinarily, and they are offered only the types they mention.
func TestAlongsideSet(t *testing.T) {
	const ordinary = `flow: lead
start: { on: okdesk.new_ticket_status }
initial: a
states:
  a: { final: true }
`
	const beside = `flow: invoice
start: { on: okdesk.new_ticket_status, alongside: true }
initial: a
states:
  a:
    ignore: [okdesk.new_comment]
    on: { action.done: [ { goto: b } ] }
  b: { final: true }
`
	fs, diags := testLoader.Compile([]File{{"a.yaml", []byte(ordinary)}, {"b.yaml", []byte(beside)}})
	if fs == nil {
		t.Fatal(diags)
	}
	inv := fs.Flow("invoice")
	if !inv.Alongside || fs.Flow("lead").Alongside || inv.KeyScope() != "invoice" || fs.Flow("lead").KeyScope() != "" {
		t.Fatalf("alongside flags: invoice %v, lead %v", inv.Alongside, fs.Flow("lead").Alongside)
	}
	for _, tc := range []struct {
		typ  string
		want int
	}{{"okdesk.new_ticket_status", 1}, {"okdesk.new_comment", 1}, {"action.done", 1}, {"waba.message", 0}} {
		if got := len(fs.AlongsideFor(tc.typ)); got != tc.want {
			t.Errorf("AlongsideFor(%s) = %d flows, want %d", tc.typ, got, tc.want)
		}
	}
	// The ordinary start ignores the alongside flow; only the ordinary one starts.
	f, _ := NewMachine().StartFlow(fs, &event.Event{Type: "okdesk.new_ticket_status", Data: map[string]any{}}, t0)
	if f == nil || f.Name != "lead" {
		t.Errorf("StartFlow = %v, want lead", f)
	}
	only, _ := testLoader.Compile([]File{{"b.yaml", []byte(beside)}})
	if f, _ := NewMachine().StartFlow(only, &event.Event{Type: "okdesk.new_ticket_status", Data: map[string]any{}}, t0); f != nil {
		t.Errorf("StartFlow = %s, want none: an alongside flow is offered events beside the ordinary routing", f.Name)
	}
}
