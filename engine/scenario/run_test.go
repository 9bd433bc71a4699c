package scenario

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestFailureOutputGolden(t *testing.T) {
	var out, errs bytes.Buffer
	code := RunTests([]string{"testdata/failing_test.yaml"}, TestOptions{Flows: "testdata/flows", Coverage: true, Verbose: true}, &out, &errs)
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if errs.Len() > 0 {
		t.Errorf("stderr: %s", errs.String())
	}
	if !strings.Contains(out.String(), "1 passed, 2 failed\n") {
		t.Errorf("no summary line in:\n%s", out.String())
	}
	golden(t, "failure.txt", out.Bytes())
}

// TestFlowsD runs the shipped scenarios: they pass and reach every state and branch.
func TestFlowsD(t *testing.T) {
	var out, errs bytes.Buffer
	if code := RunTests([]string{"../../flows.d"}, TestOptions{Coverage: true}, &out, &errs); code != 0 {
		t.Fatalf("fixit test flows.d: exit %d\n%s%s", code, out.String(), errs.String())
	}
	res, _ := Run([]string{"../../flows.d"}, TestOptions{}, &bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range res.Coverage {
		if c.Flow == "simple_lead" && (c.Reached != c.States || c.Taken != c.Branches) {
			t.Errorf("simple_lead coverage: %+v", c)
		}
	}
}

// TestBrokenBranch breaks one branch of simple_lead_flow and checks that exactly
// the scenarios that depend on it fail, with a readable diff.
func TestBrokenBranch(t *testing.T) {
	flow, err := os.ReadFile("../../flows.d/simple_lead_flow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scen, err := os.ReadFile("../../flows.d/simple_lead_flow_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const good, bad = "          goto: wait_payment\n", "          goto: issue_open\n"
	if strings.Count(string(flow), good) != 1 {
		t.Fatalf("simple_lead_flow.yaml no longer has exactly one %q; update this test", good)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "simple_lead_flow.yaml"), []byte(strings.Replace(string(flow), good, bad, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "simple_lead_flow_test.yaml"), scen, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	res, ok := Run([]string{dir}, TestOptions{}, &out, &errs)
	if !ok {
		t.Fatalf("run: %s", errs.String())
	}
	var failed []string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, found := strings.CutPrefix(line, "--- FAIL: "); found {
			failed = append(failed, rest[strings.Index(rest, ": ")+2:])
		}
	}
	want := []string{"happy path — name, problem, issue, completion, payment", "completion outside the 24-hour window goes as the fallback template"}
	if strings.Join(failed, "|") != strings.Join(want, "|") || res.Failed != 2 {
		t.Errorf("failed scenarios = %q, want %q\n%s", failed, want, out.String())
	}
	if !strings.Contains(out.String(), "    state\n        expected: wait_payment\n        actual:   issue_open\n") {
		t.Errorf("no readable state diff in:\n%s", out.String())
	}
}

func TestCoverageMissing(t *testing.T) {
	fs := demoFlows(t)
	sf, diags := ParseScenarios("c_test.yaml", []byte("scenarios:\n  - name: c\n    steps:\n      - whatsapp: hi\n      - button: a\n      - list: r1\n"))
	if sf == nil {
		t.Fatal(diags)
	}
	cov := NewCoverage()
	if f := RunScenario(fs, sf.Scenarios[0], cov); f != nil {
		t.Fatal(failureOut(f))
	}
	rep := cov.Report(fs)
	if len(rep) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	r := rep[0]
	// Reached: menu, pick. Taken: menu/waba.message b1, pick/waba.message b2 (the
	// catch-all after a false guard). 13 branches: 5+1+1+1 on, 1 timer, 2 on, 2 always.
	if r.States != 5 || r.Reached != 2 || r.Branches != 13 || r.Taken != 2 {
		t.Errorf("coverage = %+v", r)
	}
	var b bytes.Buffer
	WriteCoverage(&b, rep)
	for _, want := range []string{
		"coverage: demo (testdata/flows/demo.yaml): states 2/5 (40.0%), branches 2/13 (15.4%)",
		"testdata/flows/demo.yaml:18:11: branch never taken: menu: on waba.message, branch 2 (when event.text == \"boom\")",
		"testdata/flows/demo.yaml:33:18: branch never taken: menu: after 1h",
		"testdata/flows/demo.yaml:41:11: branch never taken: pick: on waba.message, branch 1 (when event.data.reply_id == \"r2\")",
		"testdata/flows/demo.yaml:45:3: state check never entered",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("coverage output lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "pick: on waba.message, branch 2") || strings.Contains(b.String(), "menu: on waba.message, branch 1 ") {
		t.Errorf("coverage lists a branch that was taken:\n%s", b.String())
	}
}

// TestScenarioFlows: a scenario file's `flows:` loads flows from elsewhere beside
// its folder's; each flow file's coverage is reported once, summed over every
// scenario file that loaded it; a path that does not exist fails the run.
func TestScenarioFlows(t *testing.T) {
	var out, errs bytes.Buffer
	res, ok := Run([]string{"../../examples", "../../flows.d"}, TestOptions{}, &out, &errs)
	if !ok || res.Failed > 0 {
		t.Fatalf("run: %s%s", out.String(), errs.String())
	}
	seen := map[string]int{}
	for _, fc := range res.Coverage {
		seen[fc.File]++
		if fc.Reached != fc.States {
			t.Errorf("%s: %d of %d states reached", fc.File, fc.Reached, fc.States)
		}
	}
	for file, n := range seen {
		if n != 1 {
			t.Errorf("%s reported %d times", file, n)
		}
	}
	if seen["../../flows.d/simple_lead_flow.yaml"] != 1 || len(seen) != 3 {
		t.Errorf("coverage of %v", seen)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x_test.yaml"), []byte("flows: [nowhere]\nscenarios:\n  - name: a\n    steps: [ { advance: 1m } ]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := Run([]string{dir}, TestOptions{}, &out, &errs); ok {
		t.Error("a scenario file whose flows: names nothing ran")
	}
}
