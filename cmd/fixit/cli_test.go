package main

import (
	"bytes"
	"encoding/json"
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

func TestGraphSchemaVersion(t *testing.T) {
	code, out, _ := runCLI("graph", "--flows", "../../flows.d", "simple_lead")
	if code != 0 || !strings.Contains(out, "stateDiagram-v2") || !strings.Contains(out, "ask_name --> ask_problem") {
		t.Errorf("graph mermaid: %d\n%s", code, out)
	}
	code, out, _ = runCLI("graph", "--flows", "../../flows.d", "--format", "dot", "simple_lead")
	if code != 0 || !strings.HasPrefix(out, `digraph "simple_lead"`) {
		t.Errorf("graph dot: %d\n%s", code, out)
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
