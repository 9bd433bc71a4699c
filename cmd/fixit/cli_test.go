package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("flow: bad\nstart: waba.message\ninitial: ask\nstates:\n  ask:\n    on: { waba.message: [ { goto: askk } ] }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badScenario := filepath.Join(dir, "bad_test.yaml")
	if err := os.WriteFile(badScenario, []byte("scenarios:\n  - name: x\n    steps:\n      - whatsap: hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"shipped flows", []string{"validate", "../../flows.d", "../../examples"}, 0, nil},
		{"broken file, text", []string{"validate", bad}, 1, []string{bad + `:6:35: error: unknown-state goto names unknown state "askk"`, `    hint: did you mean "ask"?`}},
		{"broken file, json", []string{"validate", "--format", "json", bad}, 1, []string{`"ok": false`, `"code": "unknown-state"`, `"line": 6`, `"col": 35`}},
		{"good file, json", []string{"validate", "--format=json", "../../flows.d"}, 0, []string{`"ok": true`, `"flow": "simple_lead"`}},
		{"missing path", []string{"validate", filepath.Join(dir, "nope")}, 1, []string{"read-error"}},
		{"bad format", []string{"validate", "--format", "xml", bad}, 2, nil},
		{"flag after the path", []string{"validate", bad, "--format", "json"}, 1, []string{`"ok": false`, `"end_line": 6`, `"end_col": 39`}},
		{"flows and scenarios by name", []string{"validate", "../../flows.d/simple_lead_flow.yaml", "../../flows.d/simple_lead_flow_test.yaml"}, 0, nil},
		{"a broken scenario file", []string{"validate", badScenario}, 1, []string{badScenario + `:4:9: error: unknown-key unknown key "whatsap" in step`, `    hint: did you mean "whatsapp"?`}},
		{"a folder's scenarios, json", []string{"validate", "--format", "json", "../../examples"}, 0, []string{`"file": "../../examples/telegram_visit_confirmation_test.yaml"`, `"scenarios": `}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out, errOut)
			}
			for _, s := range c.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if strings.Contains(strings.Join(c.args, " "), "json") && c.code != 2 {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Errorf("--format json is not JSON: %v", err)
				}
			}
		})
	}
}

// TestValidateGlob: `fixit validate flows.d/*.yaml` names the scenario file too;
// it is read as scenarios, not as a flow.
func TestValidateGlob(t *testing.T) {
	paths, err := filepath.Glob("../../flows.d/*.yaml")
	if err != nil || len(paths) < 2 {
		t.Fatalf("glob: %v %v", paths, err)
	}
	code, out, errOut := runCLI(append([]string{"validate"}, paths...)...)
	if code != 0 || out != "" || !strings.Contains(errOut, "1 flow(s) OK, 1 scenario file(s) OK") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestValidateSARIF: --format sarif is a SARIF 2.1.0 log a code-scanning upload
// accepts: every code a rule, every diagnostic a result with its region.
func TestValidateSARIF(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("flow: bad\nstart: waba.message\ninitial: ask\nstates:\n  ask:\n    on: { waba.message: [ { goto: askk } ] }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI("validate", bad, "--format", "sarif")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region map[string]int `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "fixit" || len(log.Runs[0].Results) != 1 {
		t.Fatalf("log: %+v", log)
	}
	r := log.Runs[0].Results[0]
	rules := log.Runs[0].Tool.Driver.Rules
	if r.RuleID != "unknown-state" || rules[r.RuleIndex].ID != r.RuleID || r.Level != "error" || !strings.Contains(r.Message.Text, `did you mean "ask"?`) {
		t.Errorf("result: %+v", r)
	}
	loc := r.Locations[0].PhysicalLocation
	if loc.ArtifactLocation.URI != filepath.ToSlash(bad) || loc.Region["startLine"] != 6 || loc.Region["startColumn"] != 35 || loc.Region["endLine"] != 6 || loc.Region["endColumn"] != 39 {
		t.Errorf("location: %+v", loc)
	}
}

func TestGraphSchemaVersion(t *testing.T) {
	code, out, _ := runCLI("graph", "--flows", "../../flows.d", "simple_lead")
	if code != 0 || !strings.Contains(out, "stateDiagram-v2") || !strings.Contains(out, "ask_name --> ask_problem") {
		t.Errorf("graph mermaid: %d\n%s", code, out)
	}
	code, out, _ = runCLI("graph", "--flows", "../../flows.d", "--format", "dot", "simple_lead")
	if code != 0 || !strings.HasPrefix(out, `digraph "simple_lead"`) {
		t.Errorf("graph dot: %d\n%s", code, out)
	}
	// Flags after the flow, and a final state's label broken in two lines (\n
	// is Graphviz's line break, not an escaped backslash).
	code, out, _ = runCLI("graph", "simple_lead", "--format", "dot", "--flows", "../../flows.d")
	if code != 0 || !strings.Contains(out, `"done" [shape=doublecircle, label="done\n(finished)"]`) || strings.Contains(out, `\\n`) {
		t.Errorf("graph with flags after the flow: %d\n%s", code, out)
	}
	code, out, _ = runCLI("graph", "../../examples/telegram_visit_confirmation.yaml", "--format", "mermaid")
	if code != 0 || !strings.Contains(out, "title: telegram_visit") {
		t.Errorf("graph of a file: %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("graph", "--flows", "../../flows.d", "nope"); code != 1 || !strings.Contains(errOut, `no flow "nope"`) {
		t.Errorf("graph of an unknown flow: %d %s", code, errOut)
	}
	code, out, _ = runCLI("schema")
	var schema map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &schema) != nil || schema["$schema"] == nil {
		t.Errorf("schema: %d", code)
	}
	code, out, _ = runCLI("version")
	if code != 0 || !strings.Contains(out, "fixit ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %d %s", code, out)
	}
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %d %s", code, errOut)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args   []string
		format string
		pos    []string
	}{
		{[]string{"a", "b"}, "text", []string{"a", "b"}},
		{[]string{"--format", "json", "a"}, "json", []string{"a"}},
		{[]string{"a", "--format", "json", "b"}, "json", []string{"a", "b"}},
		{[]string{"a", "b", "--format=sarif"}, "sarif", []string{"a", "b"}},
		{[]string{"a", "--", "--format", "b"}, "text", []string{"a", "--format", "b"}},
	}
	for _, tt := range tests {
		fs := flagSet("t", io.Discard)
		format := fs.String("format", "text", "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil || *format != tt.format || strings.Join(pos, " ") != strings.Join(tt.pos, " ") {
			t.Errorf("parseArgs(%q) = %q, format %q, %v; want %q, %q", tt.args, pos, *format, err, tt.pos, tt.format)
		}
	}
}
