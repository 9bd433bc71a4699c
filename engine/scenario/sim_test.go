package scenario

import (
	"bytes"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/sim"
)

var update = flag.Bool("update", false, "rewrite golden files")

func demoFlows(t *testing.T) *engine.FlowSet {
	t.Helper()
	fs, diags := sim.DefaultLoader().Load("testdata/flows")
	if fs == nil {
		t.Fatalf("load demo flows: %v", diags)
	}
	return fs
}

// runYAML parses a scenario file and runs its scenarios; it returns the failures.
func runYAML(t *testing.T, fs *engine.FlowSet, src string) []*ScenarioFailure {
	t.Helper()
	sf, diags := ParseScenarios("case_test.yaml", []byte(src))
	if sf == nil {
		t.Fatalf("parse: %v", diags)
	}
	var out []*ScenarioFailure
	for _, sc := range sf.Scenarios {
		if f := RunScenario(fs, sc, nil); f != nil {
			out = append(out, f)
		}
	}
	return out
}

func failureOut(f *ScenarioFailure) string {
	var b bytes.Buffer
	f.Write(&b)
	return b.String()
}

func TestParseScenariosGood(t *testing.T) {
	src := `
contact: { phone: "+7 999 000-11-22", name: "Иван" }
start: 2026-01-02T03:04:05Z
env: { FLOW_X: "1" }
scenarios:
  - name: all kinds
    telegram: { chat_id: "42", name: "Тг" }
    steps:
      - whatsapp: "hi"
      - whatsapp: { text: "hi", from: "+79160000000", name: "Other" }
      - button: "Альфа"
      - list: { id: r1 }
      - photo: "caption"
      - document: { caption: "c", filename: "f.pdf" }
      - media: { kind: voice }
      - location: { latitude: 1.5, longitude: 2 }
      - telegram: "hello"
      - callback: "data"
      - okdesk.status: completed
      - okdesk.comment: { text: "x", public: false, issue: "7" }
      - onec.payment: { status: unpaid, okdesk_issue_id: 7 }
      - event: { type: okdesk.new_ticket, keys: ["okdesk:issue:7"], data: { a: 1 } }
      - advance: 1d2h
      - mock: { send: { fail: window_closed, once: true }, okdesk.create_issue: default }
      - handback: true
        expect:
          sent: ["a", "~b", { text: "c", buttons: ["x"], via: buttons }, { template: t, params: ["1"] }]
          actions: [okdesk.comment, { okdesk.create_issue: { title: "~T" } }]
          failed: [ { send: window_closed }, okdesk.comment ]
          logged: []
          state: s
          vars: { n: 1 }
          status: handoff
          error: "~boom"
          keys: ["okdesk:issue:7"]
`
	sf, diags := ParseScenarios("good_test.yaml", []byte(src))
	if sf == nil || len(diags) > 0 {
		t.Fatalf("parse: %v", diags)
	}
	sc := sf.Scenarios[0]
	var kinds []string
	for _, st := range sc.Steps {
		kinds = append(kinds, st.Kind)
	}
	if got, want := strings.Join(kinds, ","), "whatsapp,whatsapp,button,list,photo,document,media,location,telegram,callback,okdesk.status,okdesk.comment,onec.payment,event,advance,mock,handback"; got != want {
		t.Errorf("kinds = %s, want %s", got, want)
	}
	if sc.Contact.WAID() != "79990001122" || sc.Telegram.ChatID != "42" || sc.Env["FLOW_X"] != "1" || sc.Start.Year() != 2026 {
		t.Errorf("settings: %+v %+v %v %v", sc.Contact, sc.Telegram, sc.Env, sc.Start)
	}
	if d := sc.Steps[14].in.(*advance).d.Hours(); d != 26 {
		t.Errorf("advance = %vh, want 26h", d)
	}
	e := sc.Steps[16].Expect
	if len(e.Sent) != 4 || len(e.Actions) != 2 || len(e.Failed) != 2 || !e.HasLog || *e.State != "s" || *e.Status != "handoff" || e.Error == nil || len(e.Keys) != 1 {
		t.Errorf("expect = %+v", e)
	}
	if sc.Steps[0].Text != `whatsapp: "hi"` || sc.Steps[0].Pos.Line != 9 || sc.Steps[0].Pos.Col != 9 {
		t.Errorf("step 1 = %q at %+v", sc.Steps[0].Text, sc.Steps[0].Pos)
	}
}

func TestParsePendingAndComplete(t *testing.T) {
	src := `scenarios:
  - name: slow connectors
    steps:
      - mock: { okdesk.create_issue: pending, send: pending }
      - complete: { okdesk.create_issue: { id: "1542", n: 2 }, send: default }
      - complete: { okdesk.comment: { fail: { code: server_error, status: 503, message: "down" } } }
      - complete: { http: fail, onec.read: ~ }
        expect: { outcome: ignored, sent: [] }
`
	sf, diags := ParseScenarios("p_test.yaml", []byte(src))
	if sf == nil || len(diags) > 0 {
		t.Fatalf("parse: %v", diags)
	}
	st := sf.Scenarios[0].Steps
	m := st[0].in.(*mockStep)
	if len(m.entries) != 2 || !m.entries[0].mock.Pending || !m.entries[0].once || m.entries[1].kind != "send" || !m.entries[1].mock.Pending {
		t.Errorf("mock pending = %+v", m.entries)
	}
	c := st[1].in.(*complete)
	if st[1].Kind != "complete" || st[1].Text != `complete: {okdesk.create_issue: {id: "1542", n: 2}, send: "default"}` || len(c.entries) != 2 ||
		c.entries[0].mock.Result["id"] != "1542" || c.entries[0].mock.Result["n"] != 2.0 || c.entries[1].kind != "send" || c.entries[1].mock.Result != nil {
		t.Errorf("complete = %q %+v", st[1].Text, c.entries)
	}
	if f := st[2].in.(*complete).entries[0].mock.Fail; f == nil || *f != (sim.Failure{Code: "server_error", Status: 503, Message: "down"}) {
		t.Errorf("complete fail = %+v", f)
	}
	if e := st[3].in.(*complete).entries; e[0].mock.Fail == nil || e[0].mock.Fail.Code != "bad_request" || e[1].mock.Fail != nil {
		t.Errorf("complete fail/default = %+v", e)
	}
	if o := st[3].Expect.Outcome; o == nil || *o != sim.OutcomeIgnored {
		t.Errorf("outcome on complete: %v", o)
	}
}

func TestParseScenariosErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // "line:col code", in order
	}{
		{"yaml syntax", "scenarios:\n  - name: [\n", []string{"2:11 yaml-syntax"}},
		{"empty", "", []string{"1:1 missing-key"}},
		{"no scenarios", "start: 2026-01-01T00:00:00Z\n", []string{"1:1 missing-key"}},
		{"unknown top key", "scenario: []\n", []string{"1:1 missing-key", "1:1 unknown-key"}},
		{"scenarios not a list", "scenarios: {}\n", []string{"1:12 wrong-type"}},
		{"no name, no steps", "scenarios:\n  - {}\n", []string{"2:5 missing-key", "2:5 missing-key"}},
		{"unknown step", "scenarios:\n  - name: x\n    steps:\n      - whatsap: hi\n", []string{"4:9 unknown-key"}},
		{"two inputs", "scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        advance: 1h\n", []string{"5:9 wrong-type"}},
		{"bad duration", "scenarios:\n  - name: x\n    steps:\n      - advance: soon\n", []string{"4:18 bad-duration"}},
		{"negative duration", "scenarios:\n  - name: x\n    steps:\n      - advance: -1h\n", []string{"4:18 bad-duration"}},
		{"bad start", "start: tomorrow\nscenarios: []\n", []string{"1:8 bad-value"}},
		{"bad phone", "contact: { phone: \"12\" }\nscenarios: []\n", []string{"1:19 bad-value"}},
		{"env not FLOW_", "env: { SECRET: x }\nscenarios: []\n", []string{"1:8 bad-value"}},
		{"duplicate key", "scenarios:\n  - name: x\n    name: y\n    steps: []\n", []string{"3:5 duplicate-key"}},
		{"duplicate scenario", "scenarios:\n  - name: x\n    steps: []\n  - name: x\n    steps: []\n", []string{"4:5 duplicate-key"}},
		{"unknown expect key", "scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        expect: { stat: a }\n", []string{"5:19 unknown-key"}},
		{"bad status", "scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        expect: { status: done }\n", []string{"5:27 bad-value"}},
		{"outcome on advance", "scenarios:\n  - name: x\n    steps:\n      - advance: 1h\n        expect: { unhandled: true }\n", []string{"5:19 bad-value"}},
		{"bad outcome", "scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        expect: { outcome: lost }\n", []string{"5:28 bad-value"}},
		{"unknown mock action", "scenarios:\n  - name: x\n    steps:\n      - mock: { okdesk.create_isue: {} }\n", []string{"4:17 unknown-action"}},
		{"mock both", "scenarios:\n  - name: x\n    steps:\n      - mock: { send: { fail: x, id: 1 } }\n", []string{"4:23 wrong-type"}},
		{"complete not a mapping", "scenarios:\n  - name: x\n    steps:\n      - complete: okdesk.create_issue\n", []string{"4:19 wrong-type"}},
		{"complete names nothing", "scenarios:\n  - name: x\n    steps:\n      - complete: {}\n", []string{"4:19 missing-key"}},
		{"complete unknown action", "scenarios:\n  - name: x\n    steps:\n      - complete: { okdesk.create_isue: { id: \"1\" } }\n", []string{"4:21 unknown-action"}},
		{"complete pending", "scenarios:\n  - name: x\n    steps:\n      - complete: { send: pending }\n", []string{"4:27 wrong-type"}},
		{"complete both", "scenarios:\n  - name: x\n    steps:\n      - complete:\n          okdesk.create_issue: { id: \"1\", fail: x }\n", []string{"5:32 wrong-type"}},
		{"complete once", "scenarios:\n  - name: x\n    steps:\n      - complete: { send: { once: true } }\n", []string{"4:29 bad-value"}},
		{"complete fail status", "scenarios:\n  - name: x\n    steps:\n      - complete: { http: { fail: { status: soon } } }\n", []string{"4:45 wrong-type"}},
		{"complete fail unknown key", "scenarios:\n  - name: x\n    steps:\n      - complete: { http: { fail: { cod: x } } }\n", []string{"4:37 unknown-key"}},
		{"mock pending mapping value", "scenarios:\n  - name: x\n    steps:\n      - mock: { send: [pending] }\n", []string{"4:23 wrong-type"}},
		{"unknown expected action", "scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        expect: { actions: [okdesk.coment] }\n", []string{"5:29 unknown-action"}},
		{"sent not a list", "scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        expect: { sent: hello }\n", []string{"5:25 wrong-type"}},
		{"media kind", "scenarios:\n  - name: x\n    steps:\n      - media: { kind: gif }\n", []string{"4:24 bad-value"}},
		{"status missing", "scenarios:\n  - name: x\n    steps:\n      - okdesk.status: { old: opened }\n", []string{"4:24 missing-key"}},
		{"comment author", "scenarios:\n  - name: x\n    steps:\n      - okdesk.comment: { text: a, author: bot }\n", []string{"4:44 bad-value"}},
		{"step not a mapping", "scenarios:\n  - name: x\n    steps:\n      - hello\n", []string{"4:9 wrong-type"}},
		{"a tab in the indentation", "scenarios:\n\t- name: x\n", []string{"2:1 yaml-syntax"}},
		{"not UTF-8", "scenarios:\n  - name: \"\xcf\xf0\xe8\"\n", []string{"2:12 not-utf8"}},
		{"a no-break space in the indentation", "scenarios:\n  - name: x\n  \u00a0 steps: []\n", []string{"3:3 invisible-char"}},
		{"an expression cut by a comma", "scenarios:\n  - { name: x, steps: [ { advance: f(1, 2) } ] }\n", []string{"2:36 bad-duration", "2:36 split-value"}},
		{"a quote left open", "scenarios:\n  - name: \"x\n    steps:\n      - whatsapp: \"hi\"\n", []string{"2:11 yaml-syntax"}},
		{"several problems at once", "scenarios:\n  - name: x\n    steps:\n      - advance: x\n      - whatsapp: [1]\n      - bogus: 1\n",
			[]string{"4:18 bad-duration", "5:19 wrong-type", "6:9 unknown-key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sf, diags := ParseScenarios("bad_test.yaml", []byte(tc.src))
			if sf != nil {
				t.Fatalf("parsed a malformed file; diagnostics %v", diags)
			}
			var got []string
			for _, d := range diags {
				got = append(got, strings.Join([]string{itoa(d.Line) + ":" + itoa(d.Col), d.Code}, " "))
				if d.File != "bad_test.yaml" || d.Severity != engine.SevError || d.Message == "" {
					t.Errorf("diagnostic %+v", d)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got  %v\nwant %v\n%v", got, tc.want, diags)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRetryStep: an operator's retry performs the dialog's last failed action of a
// kind again, answered by the mocks as they are then; a retry with nothing failed
// fails the step.
func TestRetryStep(t *testing.T) {
	fs := demoFlows(t)
	failures := runYAML(t, fs, `scenarios:
  - name: Okdesk refuses, then an operator retries
    steps:
      - whatsapp: "Здравствуйте"
      - mock: { okdesk.create_issue: { fail: { code: bad_request, status: 422, message: "contact is invalid" }, once: true } }
      - whatsapp: "issue"
        expect: { failed: [ okdesk.create_issue ] }
      - mock: { okdesk.create_issue: { id: "1542" } }
      - retry: okdesk.create_issue
        expect: { keys: [ "okdesk:issue:1542" ] }
`)
	for _, f := range failures {
		t.Error(failureOut(f))
	}
	failures = runYAML(t, fs, `scenarios:
  - name: nothing to retry
    steps:
      - whatsapp: "Здравствуйте"
      - whatsapp: "issue"
      - retry: okdesk.create_issue
`)
	if len(failures) != 1 || !strings.Contains(failureOut(failures[0]), "no failed or dead action") {
		t.Errorf("a retry of nothing: %v", failures)
	}
	if _, diags := ParseScenarios("r_test.yaml", []byte("scenarios:\n  - name: x\n    steps:\n      - retry: okdesk.creat_issue\n")); !strings.Contains(fmt.Sprint(diags), `unknown action "okdesk.creat_issue"`) {
		t.Errorf("an unknown kind: %v", diags)
	}
}
