package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunTestFlowsD(t *testing.T) {
	var out, errs bytes.Buffer
	if code := runTest([]string{"--coverage", "../../flows.d"}, &out, &errs); code != 0 {
		t.Fatalf("fixit test: exit %d\n%s%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "states 11/11 (100.0%), branches 48/48 (100.0%)") || !strings.HasSuffix(out.String(), " passed, 0 failed\n") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if code := runTest([]string{"../../flows.d", "--coverage"}, &out, &errs); code != 0 || !strings.Contains(out.String(), "coverage: simple_lead") {
		t.Errorf("--coverage after the path: exit %d\n%s", code, out.String())
	}
	if code := runTest([]string{"--bogus"}, &out, &errs); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := runTest([]string{"../../flows.d/simple_lead_flow.yaml"}, &out, &errs); code != 1 {
		t.Errorf("a flow file given as a scenario: exit %d, want 1", code)
	}
}

func TestChatCommand(t *testing.T) {
	var out, errs bytes.Buffer
	in := strings.NewReader("Здравствуйте\nАнна\n/quit\n")
	if code := chatMain([]string{"--flows", "../../flows.d", "simple_lead"}, in, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "bot: Анна, опишите, пожалуйста, проблему.") {
		t.Errorf("output:\n%s", out.String())
	}
	if code := chatMain([]string{"--flows", "../../flows.d", "nope"}, strings.NewReader(""), &out, &errs); code != 1 || !strings.Contains(errs.String(), `no flow "nope"`) {
		t.Errorf("unknown flow: exit %d, %s", code, errs.String())
	}
	out.Reset()
	if code := chatMain([]string{"simple_lead", "--flows", "../../flows.d"}, strings.NewReader("hi\n"), &out, &errs); code != 0 || !strings.Contains(out.String(), "flow simple_lead") {
		t.Errorf("--flows after the flow: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := chatMain([]string{"../../flows.d/simple_lead_flow.yaml"}, strings.NewReader("hi\n"), &out, &errs); code != 0 || !strings.Contains(out.String(), "flow simple_lead") {
		t.Errorf("flow by file: exit %d\n%s", code, out.String())
	}
}
