package scenario

import (
	"strings"
	"testing"
)

// TestStepsAndExpectations runs each step and expectation kind against the demo
// flow, once where the expectation holds and once where it does not.
func TestStepsAndExpectations(t *testing.T) {
	fs := demoFlows(t)
	start := "      - whatsapp: hi\n"
	tests := []struct {
		name  string
		steps string
		fail  string // "" = must pass; else a text the failure output contains
	}{
		{"sent exact", "      - whatsapp: hi\n        expect: { sent: [{ text: Выберите, buttons: [Альфа, Бета], via: buttons }] }\n", ""},
		{"sent contains", "      - whatsapp: hi\n        expect: { sent: [\"~бери\"] }\n", ""},
		{"sent wrong", "      - whatsapp: hi\n        expect: { sent: [\"Привет\"] }\n", "sent\n        expected: \"Привет\"\n        actual:   \"Выберите\" buttons: Альфа | Бета"},
		{"nothing sent", start + "      - okdesk.status: { issue: \"1\", status: x }\n        expect: { sent: [], outcome: unrouted }\n", ""},
		{"nothing sent, wrong", start + "      - whatsapp: other\n        expect: { sent: [] }\n", "expected: (none)\n        actual:   \"?\""},
		{"button by title", start + "      - button: Альфа\n        expect: { state: pick, vars: { choice: a }, sent: [{ list: [Первый, Второй] }] }\n", ""},
		{"button by id", start + "      - button: a\n        expect: { state: pick }\n", ""},
		{"list then always", start + "      - button: a\n      - list: Второй\n        expect: { state: done, finished: true, vars: { choice: r2 } }\n", ""},
		{"list wrong row", start + "      - button: a\n      - list: r1\n        expect: { sent: [Выберите из списка], state: pick }\n", ""},
		{"state wrong", start + "      - button: b\n        expect: { state: pick }\n", "state\n        expected: pick\n        actual:   menu"},
		{"vars wrong type", start + "      - button: a\n        expect: { vars: { n: \"0\" } }\n", "vars.n\n        expected: \"0\"\n        actual:   0"},
		{"runtime error expected", start + "      - whatsapp: boom\n        expect: { error: \"~deeper\", outcome: failed, state: menu }\n", ""},
		{"runtime error unexpected", start + "      - whatsapp: boom\n", "runtime error\n        expected: none"},
		{"handoff held, until hands back", start + "      - whatsapp: help\n        expect: { status: handoff }\n      - whatsapp: again\n        expect: { outcome: held, sent: [] }\n      - whatsapp: issue\n        expect: { outcome: held }\n", ""},
		{"actions subset", start + "      - whatsapp: issue\n        expect: { actions: [ { okdesk.create_issue: { title: \"~issue\" } } ], keys: [\"okdesk:issue:1001\"] }\n", ""},
		{"actions wrong param", start + "      - whatsapp: issue\n        expect: { actions: [ { okdesk.create_issue: { title: \"X\" } } ] }\n", "actions (all but send)\n        expected: okdesk.create_issue {title: \"X\"}"},
		{"mock result and okdesk status to bound issue", start + "      - mock: { okdesk.create_issue: { id: \"77\" } }\n      - whatsapp: issue\n      - okdesk.status: completed\n        expect: { sent: [\"status completed\"], logged: [\"status completed\"] }\n", ""},
		{"mock failure", start + "      - mock: { okdesk.create_issue: { fail: { code: server_error, status: 503 } } }\n      - whatsapp: issue\n        expect: { failed: [ { okdesk.create_issue: server_error } ], keys: [] }\n", ""},
		{"mock once", start + "      - mock: { okdesk.create_issue: { fail: x, once: true } }\n      - whatsapp: issue\n        expect: { failed: [okdesk.create_issue] }\n      - whatsapp: issue\n        expect: { failed: [] }\n", ""},
		{"mock send window_closed", start + "      - mock: { send: { fail: window_closed } }\n      - whatsapp: zzz\n        expect: { sent: [], failed: [ { send: window_closed } ] }\n", ""},
		{"raw event routed by key", start + "      - advance: 30m\n      - event: { type: okdesk.new_ticket_status, keys: [\"waba:200000000000001:79161234567\"], data: { new_status: x } }\n        expect: { sent: [\"status x\"] }\n", ""},
		{"timer fires", start + "      - advance: 59m\n        expect: { state: menu }\n      - advance: 1m\n        expect: { status: abandoned }\n", ""},
		{"telegram", "      - telegram: hi\n        expect: { started: true, sent: [Выберите] }\n      - telegram: again\n        expect: { sent: [\"tg: again\"] }\n", ""},
		{"callback unhandled", "      - telegram: hi\n      - callback: a\n        expect: { unhandled: true }\n", ""},
		{"photo, location, media are messages", start + "      - photo: cap\n        expect: { sent: [\"?\"] }\n      - location: { latitude: 1, longitude: 2 }\n      - media: { kind: voice }\n        expect: { outcome: handled }\n", ""},
		{"payment unhandled", start + "      - onec.payment: paid\n        expect: { unhandled: true }\n", ""},
		{"ignored action.done", start + "      - button: a\n      - event: { type: action.done, data: { dialog_id: \"1\", action: send } }\n        expect: { ignored: true }\n", ""},
		{"started twice is one dialog", start + "      - whatsapp: again\n        expect: { started: false }\n", ""},
		{"status wrong", start + "      - whatsapp: x\n        expect: { finished: true }\n", "status\n        expected: finished\n        actual:   active"},
		{"outcome wrong", start + "      - whatsapp: x\n        expect: { unhandled: true }\n", "outcome of the step's event\n        expected: unhandled\n        actual:   handled"},
		{"logged wrong", start + "      - whatsapp: x\n        expect: { logged: [a] }\n", "logged\n        expected: \"a\"\n        actual:   (none)"},
		{"error missing", start + "      - whatsapp: x\n        expect: { error: \"~y\" }\n", "error\n        expected: ~\"y\"\n        actual:   (none)"},
		{"key missing", start + "      - whatsapp: x\n        expect: { keys: [\"okdesk:issue:1\"] }\n", "bound key\n        expected: okdesk:issue:1"},
		{"no issue yet", start + "      - okdesk.comment: hi\n", "the step could not run"},
		{"handback without handoff", start + "      - handback: true\n", "not with a human"},
		{"pending then complete", start + "      - mock: { okdesk.create_issue: pending }\n      - whatsapp: issue\n        expect: { actions: [okdesk.create_issue], keys: [] }\n" +
			"      - complete: { okdesk.create_issue: { id: \"77\" } }\n        expect: { outcome: handled, actions: [], failed: [], sent: [], keys: [\"okdesk:issue:77\"] }\n", ""},
		{"pending is once", start + "      - mock: { okdesk.create_issue: pending }\n      - whatsapp: issue\n      - whatsapp: issue\n        expect: { keys: [\"okdesk:issue:1001\"] }\n" +
			"      - complete: { okdesk.create_issue: {} }\n        expect: { keys: [\"okdesk:issue:1002\"] }\n", ""},
		{"complete with a failure", start + "      - mock: { okdesk.create_issue: pending }\n      - whatsapp: issue\n        expect: { failed: [] }\n" +
			"      - complete: { okdesk.create_issue: { fail: { code: server_error, status: 503, message: down } } }\n        expect: { failed: [ { okdesk.create_issue: server_error } ], outcome: unhandled, keys: [] }\n", ""},
		{"complete a send later", start + "      - mock: { send: pending }\n      - whatsapp: zzz\n        expect: { sent: [] }\n      - advance: 30m\n" +
			"      - complete: { send: default }\n        expect: { sent: [\"?\"], outcome: handled }\n", ""},
		{"complete a send after the window closed", start + "      - mock: { send: pending }\n      - whatsapp: zzz\n      - advance: 24h\n" +
			"      - complete: { send: {} }\n        expect: { sent: [], failed: [ { send: window_closed } ] }\n", ""},
		{"a result goes through a handoff", start + "      - mock: { okdesk.create_issue: pending }\n      - whatsapp: issue\n      - whatsapp: help\n        expect: { status: handoff }\n" +
			"      - complete: { okdesk.create_issue: { id: \"9\" } }\n        expect: { outcome: handled, status: handoff, keys: [\"okdesk:issue:9\"] }\n", ""},
		{"complete wrong expectation", start + "      - mock: { okdesk.create_issue: pending }\n      - whatsapp: issue\n      - complete: { okdesk.create_issue: { id: \"9\" } }\n        expect: { sent: [x] }\n",
			"step 4 at case_test.yaml:7:9: complete: {okdesk.create_issue: {id: \"9\"}}\n    sent\n        expected: \"x\"\n        actual:   (none)\n    what happened in this step:\n" +
				"        action.done okdesk.create_issue #2 {contact_id: \"1\", id: \"9\"} → dialog 1: stays in menu\n"},
		{"complete with nothing pending", start + "      - complete: { okdesk.create_issue: { id: \"1\" } }\n",
			"the step could not run\n        actual:   complete okdesk.create_issue: no okdesk.create_issue action is pending; hold its result back first: `mock: { okdesk.create_issue: pending }` before the step that makes the action"},
		{"complete another kind than pending", start + "      - mock: { okdesk.create_issue: pending }\n      - whatsapp: issue\n      - complete: { send: {} }\n",
			"no send action is pending (pending: okdesk.create_issue #2)"},
		{"no dialog", "      - okdesk.status: { issue: \"1\", status: x }\n        expect: { state: menu }\n", "no dialog has started"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "scenarios:\n  - name: " + tc.name + "\n    steps:\n" + tc.steps
			fails := runYAML(t, fs, src)
			switch {
			case tc.fail == "" && len(fails) > 0:
				t.Fatalf("failed:\n%s", failureOut(fails[0]))
			case tc.fail != "" && len(fails) == 0:
				t.Fatalf("passed; want a failure containing %q", tc.fail)
			case tc.fail != "" && !strings.Contains(failureOut(fails[0]), tc.fail):
				t.Fatalf("failure output lacks %q:\n%s", tc.fail, failureOut(fails[0]))
			}
		})
	}
}
