package scenario

import (
	"os"
	"strings"
	"testing"
)

const scenarioDocPath = "../../docs/scenarios.md"

// TestScenarioDoc keeps the tables of docs/scenarios.md equal to the scenario
// spec the parser checks against (-update rewrites them).
func TestScenarioDoc(t *testing.T) {
	data, err := os.ReadFile(scenarioDocPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for mark, table := range ScenarioDocs() {
		begin := "<!-- BEGIN GENERATED: " + mark + " (go test ./engine/scenario -run TestScenarioDoc -update) -->\n"
		end := "<!-- END GENERATED: " + mark + " -->\n"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Errorf("%s lacks the markers of %q", scenarioDocPath, mark)
			continue
		}
		if got := doc[i+len(begin) : j]; got != table {
			if !*update {
				t.Errorf("the %q table of %s differs from the spec; run go test ./engine/scenario -run TestScenarioDoc -update\n--- doc\n%s--- spec\n%s", mark, scenarioDocPath, got, table)
			}
			doc = doc[:i+len(begin)] + table + doc[j:]
		}
	}
	if *update {
		if err := os.WriteFile(scenarioDocPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpecKeysParse feeds the parser every key the spec documents: none may be
// unknown to it, so the spec and the parser cannot drift apart.
func TestSpecKeysParse(t *testing.T) {
	var b strings.Builder
	b.WriteString("contact: { phone: \"+79161234567\", name: Анна }\ntelegram: { chat_id: \"5\", name: Анна }\nstart: 2026-11-29T10:00:00+03:00\nenv: { FLOW_X: x }\n")
	b.WriteString("scenarios:\n  - name: all\n    contact: { phone: \"+79161234567\" }\n    telegram: { chat_id: \"5\" }\n    start: 2026-11-29T10:00:00+03:00\n    env: { FLOW_Y: y }\n    steps:\n")
	for _, s := range StepSpecs {
		switch {
		case s.Keyed:
			b.WriteString("      - " + s.Name + ": { okdesk.create_issue: { id: \"1\" } }\n")
		case len(s.Fields) == 0:
			v := map[string]string{"advance": "1h", "handback": "true"}[s.Name]
			b.WriteString("      - " + s.Name + ": " + v + "\n")
		default:
			b.WriteString("      - " + s.Name + ":\n")
			for _, f := range s.Fields {
				v := "\"1\""
				switch {
				case len(f.Enum) > 0:
					v = f.Enum[0]
				case f.Name == "public":
					v = "true"
				case f.Name == "keys":
					v = "[a]"
				case f.Name == "contact":
					v = "{ channel: waba, id: \"1\", name: a, phone: \"+79161234567\" }"
				case f.Name == "data" && s.Name == "event":
					v = "{ a: 1 }"
				case f.Name == "from" || f.Name == "phone":
					v = "\"+79161234567\""
				case f.Name == "type":
					v = "okdesk.new_ticket"
				case f.Name == "template":
					v = "{ name: t, language: ru, params: [a] }"
				case f.Name == "status":
					v = "paid"
				case f.Name == "kind" && s.Name == "retry":
					v = "okdesk.create_issue"
				}
				b.WriteString("          " + f.Name + ": " + v + "\n")
			}
		}
	}
	b.WriteString("      - whatsapp: hi\n        expect:\n")
	for _, f := range ExpectSpec.Fields {
		v := "[]"
		switch f.Name {
		case "state", "error":
			v = "x"
		case "vars":
			v = "{}"
		case "status", "outcome":
			v = f.Enum[0]
		case "finished", "started", "unhandled", "ignored", "unrouted":
			v = "true"
		}
		if f.Name == "unhandled" || f.Name == "ignored" || f.Name == "unrouted" {
			continue // one outcome per step; outcome stands for them
		}
		b.WriteString("          " + f.Name + ": " + v + "\n")
	}
	b.WriteString("      - whatsapp: hi\n        expect: { sent: [ { text: a, buttons: [a], list: [a], template: t, params: [a], via: text } ] }\n")
	b.WriteString("      - mock: { http: { fail: { code: x, message: y, status: 500 } } }\n")
	_, diags := ParseScenarios("all_test.yaml", []byte(b.String()))
	for _, d := range diags {
		t.Errorf("%s", d)
	}
	if t.Failed() {
		t.Logf("input:\n%s", b.String())
	}
}
