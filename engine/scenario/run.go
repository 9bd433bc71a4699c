package scenario

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/sim"
)

// TestOptions configure RunTests.
type TestOptions struct {
	// Flows is a flow folder or file used for every scenario file; empty means
	// each scenario file runs against the flows of its own folder.
	Flows    string
	Coverage bool   // print the states and branches no scenario reached
	Verbose  bool   // print passing scenarios too
	Run      string // run only scenarios whose name contains this text
	// Loader compiles the flows; sim.DefaultLoader() when nil.
	Loader *engine.Loader
}

// Result counts the scenarios run.
type Result struct {
	Passed, Failed int
	Coverage       []FlowCoverage
}

// RunTests runs the scenario files at paths (files, or folders meaning their
// *_test.yaml files), prints every failure and a summary line "N passed, M failed"
// to stdout, problems with the files to stderr, and returns the exit code: 0 when
// everything passed, 1 otherwise.
func RunTests(paths []string, opt TestOptions, stdout, stderr io.Writer) int {
	res, ok := Run(paths, opt, stdout, stderr)
	if opt.Coverage {
		WriteCoverage(stdout, res.Coverage)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", res.Passed, res.Failed)
	if !ok || res.Failed > 0 {
		return 1
	}
	return 0
}

// Run runs the scenario files at paths and prints failures; ok is false when a
// file could not be read or parsed or its flows did not load.
func Run(paths []string, opt TestOptions, stdout, stderr io.Writer) (Result, bool) {
	var res Result
	files, ok := scenarioFiles(paths, stderr)
	type group struct {
		flows *engine.FlowSet
		cov   *Coverage
	}
	groups := map[string]*group{}
	cov := NewCoverage() // by flow version: shared by the groups that load the same file
	var order []string
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "%s:1:1: error: %s cannot read: %v\n", name, engine.CodeReadError, err)
			ok = false
			continue
		}
		sf, diags := ParseScenarios(name, data)
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
			if d.Hint != "" {
				fmt.Fprintf(stderr, "    hint: %s\n", d.Hint)
			}
		}
		if sf == nil {
			ok = false
			continue
		}
		srcs := FlowPaths(sf, opt.Flows)
		src := strings.Join(srcs, string(os.PathListSeparator))
		g := groups[src]
		if g == nil {
			loader := opt.Loader
			if loader == nil {
				loader = sim.DefaultLoader()
			}
			fs, diags := loader.Load(srcs...)
			for _, d := range diags {
				if d.Severity == engine.SevError {
					fmt.Fprintln(stderr, d.String())
				}
			}
			if fs == nil {
				fmt.Fprintf(stderr, "fixit test: the flows in %s do not load; scenarios in %s not run\n", strings.Join(srcs, ", "), name)
				ok = false
				continue
			}
			g = &group{flows: fs, cov: cov}
			groups[src] = g
			order = append(order, src)
		}
		for _, sc := range sf.Scenarios {
			if opt.Run != "" && !strings.Contains(sc.Name, opt.Run) {
				continue
			}
			if f := RunScenario(g.flows, sc, g.cov); f != nil {
				res.Failed++
				f.Write(stdout)
			} else {
				res.Passed++
				if opt.Verbose {
					fmt.Fprintf(stdout, "ok   %s:%d: %s\n", sc.File, sc.Pos.Line, sc.Name)
				}
			}
		}
	}
	// A flow file loaded by several groups (a scenario file's `flows:` names it
	// beside others) is reported once, with what all of them reached.
	reported := map[string]bool{}
	for _, src := range order {
		for _, fc := range cov.Report(groups[src].flows) {
			if !reported[fc.File+"\x00"+fc.Flow] {
				reported[fc.File+"\x00"+fc.Flow] = true
				res.Coverage = append(res.Coverage, fc)
			}
		}
	}
	return res, ok
}

// FlowPaths returns the flow files and folders a scenario file runs against:
// override when set (`fixit test --flows`), else the file's `flows:`, else its
// folder.
func FlowPaths(sf *ScenarioFile, override string) []string {
	switch {
	case override != "":
		return []string{override}
	case len(sf.Flows) > 0:
		return sf.Flows
	}
	return []string{filepath.Dir(sf.Name)}
}

// scenarioFiles expands paths into scenario files, sorted and unique.
func scenarioFiles(paths []string, stderr io.Writer) ([]string, bool) {
	ok := true
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(stderr, "fixit test: %v\n", err)
			ok = false
			continue
		}
		if !st.IsDir() {
			if !engine.IsScenarioFile(p) {
				fmt.Fprintf(stderr, "fixit test: %s is not a scenario file (*_test.yaml)\n", p)
				ok = false
				continue
			}
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			fmt.Fprintf(stderr, "fixit test: %v\n", err)
			ok = false
			continue
		}
		n := 0
		for _, e := range entries {
			if !e.IsDir() && engine.IsScenarioFile(e.Name()) && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, filepath.Join(p, e.Name()))
				n++
			}
		}
		if n == 0 {
			fmt.Fprintf(stderr, "fixit test: no scenario files (*_test.yaml) in %s\n", p)
			ok = false
		}
	}
	sort.Strings(out)
	return slices.Compact(out), ok
}

// ScenarioFailure describes the first failing step of a scenario.
type ScenarioFailure struct {
	Scenario   *Scenario
	StepIndex  int // 1-based
	Step       *Step
	Mismatches []Mismatch
	Report     *sim.Report
}

// Mismatch is one expectation that did not hold.
type Mismatch struct {
	What      string // "state", "sent", …
	Want, Got string
}

// Write prints the failure: where, which step, expected and actual, and the full
// transcript of the step.
func (f *ScenarioFailure) Write(w io.Writer) {
	sc := f.Scenario
	fmt.Fprintf(w, "--- FAIL: %s:%d: %s\n", sc.File, sc.Pos.Line, sc.Name)
	fmt.Fprintf(w, "    step %d at %s:%d:%d: %s\n", f.StepIndex, sc.File, f.Step.Pos.Line, f.Step.Pos.Col, f.Step.Text)
	for _, m := range f.Mismatches {
		fmt.Fprintf(w, "    %s\n", m.What)
		if m.Want != "" {
			fmt.Fprintf(w, "        expected: %s\n", m.Want)
		}
		fmt.Fprintf(w, "        actual:   %s\n", m.Got)
	}
	if f.Report != nil {
		fmt.Fprintln(w, "    what happened in this step:")
		sim.WriteReport(w, f.Report, "        ")
	}
}

// RunScenario runs one scenario in a fresh world; it returns nil when every step
// met its expectations. cov, when not nil, records what the scenario reached.
func RunScenario(fs *engine.FlowSet, sc *Scenario, cov *Coverage) *ScenarioFailure {
	opt := sim.Options{Start: sc.Start, Env: sc.Env}
	if cov != nil {
		opt.OnStep = cov.record
	}
	w, err := sim.NewWorld(fs, opt)
	if err != nil {
		return &ScenarioFailure{Scenario: sc, StepIndex: 1, Step: sc.Steps[0], Mismatches: []Mismatch{{What: "the world could not start", Got: err.Error()}}}
	}
	defer w.Close()
	return RunScenarioOn(w, sc)
}

// RunScenarioOn runs one scenario on a driver (a fresh one: the scenario starts
// with no dialogs); it returns nil when every step met its expectations.
func RunScenarioOn(w sim.Driver, sc *Scenario) *ScenarioFailure {
	r := &runner{w: w, b: w.Build(), sc: sc, last: map[string]*sim.Message{}, delivered: map[string]*sim.Action{}}
	for i, st := range sc.Steps {
		rep, err := st.in.apply(r)
		if err != nil {
			return &ScenarioFailure{Scenario: sc, StepIndex: i + 1, Step: st, Mismatches: []Mismatch{{What: "the step could not run", Got: err.Error()}}}
		}
		for _, m := range rep.Sent() {
			if len(m.Choices()) > 0 {
				r.last[m.Channel+":"+m.To] = m
			}
		}
		for _, a := range rep.Delivered() {
			if a.Message.Channel == "waba" {
				r.delivered[a.Message.To] = a
			}
		}
		if ms := r.check(st, rep); len(ms) > 0 {
			return &ScenarioFailure{Scenario: sc, StepIndex: i + 1, Step: st, Mismatches: ms, Report: rep}
		}
	}
	return nil
}

// check compares a step's expectations with its report and the current dialog.
func (r *runner) check(st *Step, rep *sim.Report) []Mismatch {
	var ms []Mismatch
	add := func(what, want, got string) { ms = append(ms, Mismatch{What: what, Want: want, Got: got}) }
	e := st.Expect
	if e == nil {
		e = &Expect{}
	}
	if errs := rep.Errors(); len(errs) > 0 && e.Error == nil {
		add("runtime error", "none", errs[0].Error())
	}
	if e.Error != nil {
		found := false
		var got []string
		for _, err := range rep.Errors() {
			got = append(got, err.Error())
			found = found || e.Error.match(err.Error())
		}
		if !found {
			add("error", e.Error.String(), orNone(strings.Join(got, "; ")))
		}
	}
	if e.HasSent {
		sent := rep.Sent()
		ok := len(sent) == len(e.Sent)
		for i := 0; ok && i < len(sent); i++ {
			ok = e.Sent[i].match(sent[i])
		}
		if !ok {
			want := make([]string, len(e.Sent))
			for i, m := range e.Sent {
				want[i] = m.String()
			}
			got := make([]string, len(sent))
			for i, m := range sent {
				got[i] = sim.DescribeMessage(m)
			}
			add("sent", list0(want), list0(got))
		}
	}
	if e.HasActs {
		var acts []*sim.Action
		for _, a := range rep.Actions() {
			if a.Kind != "send" {
				acts = append(acts, a)
			}
		}
		ok := len(acts) == len(e.Actions)
		for i := 0; ok && i < len(acts); i++ {
			ok = acts[i].Kind == e.Actions[i].kind && (e.Actions[i].params == nil || matchValue(e.Actions[i].params, acts[i].Params))
		}
		if !ok {
			want := make([]string, len(e.Actions))
			for i, m := range e.Actions {
				want[i] = m.kind
				if m.params != nil {
					want[i] += " " + sim.Show(m.params)
				}
			}
			got := make([]string, len(acts))
			for i, a := range acts {
				got[i] = a.Kind + " " + sim.Show(a.Params)
			}
			add("actions (all but send)", list0(want), list0(got))
		}
	}
	if e.HasFail {
		failed := rep.Failed()
		ok := len(failed) == len(e.Failed)
		for i := 0; ok && i < len(failed); i++ {
			ok = failed[i].Kind == e.Failed[i].kind && (e.Failed[i].code == "" || e.Failed[i].code == failed[i].Failure.Code)
		}
		if !ok {
			want := make([]string, len(e.Failed))
			for i, m := range e.Failed {
				want[i] = m.kind + ": " + orAny(m.code)
			}
			got := make([]string, len(failed))
			for i, a := range failed {
				got[i] = a.Kind + ": " + a.Failure.Code
			}
			add("failed actions", list0(want), list0(got))
		}
	}
	if e.HasLog {
		var logs []string
		for _, p := range rep.Events {
			logs = append(logs, p.Logs...)
		}
		ok := len(logs) == len(e.Logged)
		for i := 0; ok && i < len(logs); i++ {
			ok = e.Logged[i].match(logs[i])
		}
		if !ok {
			want := make([]string, len(e.Logged))
			for i, m := range e.Logged {
				want[i] = m.String()
			}
			got := make([]string, len(logs))
			for i, l := range logs {
				got[i] = sim.Quote(l)
			}
			add("logged", list0(want), list0(got))
		}
	}
	if e.Outcome != nil {
		got := "(no event)"
		if len(rep.Events) > 0 {
			got = string(rep.Events[0].Outcome)
		}
		if got != string(*e.Outcome) {
			add("outcome of the step's event", string(*e.Outcome), got)
		}
	}
	if e.Started != nil {
		got := len(rep.Events) > 0 && rep.Events[0].Started
		if got != *e.Started {
			add("started a new dialog", fmt.Sprint(*e.Started), fmt.Sprint(got))
		}
	}
	needDialog := e.State != nil || e.Status != nil || e.Vars != nil || len(e.Keys) > 0
	d := r.dialog()
	if needDialog && d == nil {
		add("dialog", "a dialog", "no dialog has started")
		return ms
	}
	if e.State != nil && d.State != *e.State {
		add("state", *e.State, orNone(d.State))
	}
	if e.Status != nil && string(d.Status) != *e.Status {
		add("status", *e.Status, string(d.Status))
	}
	for _, k := range e.VarKeys {
		got, present := d.Vars[k]
		if !present || !matchValue(e.Vars[k], got) {
			g := sim.Show(got)
			if !present {
				g = "(not set)"
			}
			add("vars."+k, sim.Show(e.Vars[k]), g)
		}
	}
	for _, k := range e.Keys {
		if owner := r.w.DialogByKey(k); !slices.Contains(d.Keys, k) || owner == nil || owner.ID != d.ID {
			add("bound key", k, list0(quoteAll(d.Keys)))
		}
	}
	return ms
}

func (m msgMatch) match(msg *sim.Message) bool {
	if m.template == nil && msg.Template != nil && m.text != nil {
		return false // the customer got a template, not this text
	}
	if m.text != nil && !m.text.match(msg.Text) {
		return false
	}
	if m.hasButtons && !matchTitles(m.buttons, msg.Buttons) {
		return false
	}
	if m.hasRows && !matchTitles(m.rows, msg.Rows) {
		return false
	}
	if m.template != nil && (msg.Template == nil || !m.template.match(msg.Template.Name)) {
		return false
	}
	if m.file != nil && !m.file.match(msg.File) {
		return false
	}
	if m.hasParams {
		if msg.Template == nil {
			return false
		}
		got := make([]any, len(msg.Template.Params))
		for i, p := range msg.Template.Params {
			got[i] = p
		}
		if !matchValue(m.params, got) {
			return false
		}
	}
	if m.from != "" && m.from != msg.From {
		return false
	}
	return m.via == "" || m.via == msg.Via
}

func matchTitles(want []textMatch, got []sim.Choice) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if !want[i].match(got[i].Title) {
			return false
		}
	}
	return true
}

func (m msgMatch) String() string {
	var parts []string
	if m.text != nil {
		parts = append(parts, m.text.String())
	}
	if m.hasButtons {
		parts = append(parts, "buttons: "+titles(m.buttons))
	}
	if m.hasRows {
		parts = append(parts, "list: "+titles(m.rows))
	}
	if m.template != nil {
		parts = append(parts, "template "+m.template.String())
	}
	if m.hasParams {
		parts = append(parts, "params "+sim.Show(m.params))
	}
	if m.file != nil {
		parts = append(parts, "file "+m.file.String())
	}
	if m.via != "" {
		parts = append(parts, "via "+m.via)
	}
	if m.from != "" {
		parts = append(parts, "from "+m.from)
	}
	return strings.Join(parts, " ")
}

func titles(ts []textMatch) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, " | ")
}

func list0(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	if len(items) == 1 {
		return items[0]
	}
	return "\n          - " + strings.Join(items, "\n          - ")
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = sim.Quote(s)
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func orAny(s string) string {
	if s == "" {
		return "any code"
	}
	return s
}
