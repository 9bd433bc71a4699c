package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/fixit-exchange/fixit/connectors"
)

// File is one flow file's name (as shown in diagnostics) and bytes.
type File struct {
	Name string
	Data []byte
}

// IsScenarioFile reports whether name is a `fixit test` scenario, not a flow.
func IsScenarioFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, "_test.yaml") || strings.HasSuffix(base, "_test.yml")
}

// ReadPaths reads flow files from files and folders (a folder contributes its
// *.yaml and *.yml files, scenario files excluded), sorted by name.
func ReadPaths(paths ...string) ([]File, Diagnostics) {
	var files []File
	var diags Diagnostics
	seen := map[string]bool{}
	add := func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		data, err := os.ReadFile(p)
		if err != nil {
			diags = append(diags, diagAt(p, Pos{1, 1}, CodeReadError, fmt.Sprintf("cannot read: %v", err)))
			return
		}
		files = append(files, File{Name: p, Data: data})
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			diags = append(diags, diagAt(p, Pos{1, 1}, CodeReadError, fmt.Sprintf("cannot read: %v", err)))
			continue
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			diags = append(diags, diagAt(p, Pos{1, 1}, CodeReadError, fmt.Sprintf("cannot list folder: %v", err)))
			continue
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			ext := filepath.Ext(name)
			if e.IsDir() || (ext != ".yaml" && ext != ".yml") || IsScenarioFile(name) || strings.HasPrefix(name, ".") {
				continue
			}
			add(filepath.Join(p, name))
			n++
		}
		if n == 0 {
			diags = append(diags, diagAt(p, Pos{1, 1}, CodeNoFlows, "no flow files (*.yaml, *.yml) in this folder"))
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, diags
}

// Loader compiles flow files against a Catalog: the same for `fixit validate`,
// the server's start and every reload. It is immutable and safe for concurrent
// use.
type Loader struct {
	catalog *Catalog
	zone    string // IANA name: parse_time's zone for flows without `timezone`
}

// NewLoader returns a Loader that checks flows against the actions and channels
// of reg (see NewCatalog).
func NewLoader(reg *connectors.Registry) (*Loader, error) {
	c, err := NewCatalog(reg)
	if err != nil {
		return nil, err
	}
	return &Loader{catalog: c, zone: "UTC"}, nil
}

// WithZone returns a copy of the loader in which flows without a `timezone` read
// times written without a zone in the IANA zone name (FIXIT_TZ); "" keeps UTC.
func (ld *Loader) WithZone(name string) (*Loader, error) {
	if name == "" {
		return ld, nil
	}
	if _, err := loadZone(name); err != nil {
		return nil, fmt.Errorf("%w: want an IANA zone such as Europe/Moscow", err)
	}
	out := *ld
	out.zone = name
	return &out, nil
}

// Zone is the zone of flows without a `timezone`.
func (ld *Loader) Zone() string { return ld.zone }

// Catalog returns what the loader checks flows against.
func (ld *Loader) Catalog() *Catalog { return ld.catalog }

// Load reads and compiles the flows at paths (files or folders) into one FlowSet.
// On any error it returns a nil set and every diagnostic; warnings come back either way.
func (ld *Loader) Load(paths ...string) (*FlowSet, Diagnostics) {
	files, diags := ReadPaths(paths...)
	fs, more := ld.Compile(files)
	diags = append(diags, more...)
	diags.Sort()
	if diags.HasErrors() {
		return nil, diags
	}
	return fs, diags
}

// Compile builds a FlowSet from files. It never returns half a set: with any error
// the set is nil.
func (ld *Loader) Compile(files []File) (*FlowSet, Diagnostics) {
	var diags Diagnostics
	fs := &FlowSet{byName: map[string]*Flow{}, byHash: map[string]*Flow{}, loader: ld}
	// Files compile independently, on every core; they are merged in their order.
	type compiled struct {
		flow  *Flow
		diags Diagnostics
	}
	out := make([]compiled, len(files))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(files); i = int(next.Add(1) - 1) {
				out[i].flow, out[i].diags = ld.compileFile(files[i])
			}
		})
	}
	wg.Wait()
	for i, f := range files {
		flow, ds := out[i].flow, out[i].diags
		diags = append(diags, ds...)
		if flow == nil {
			continue
		}
		if prev, dup := fs.byName[flow.Name]; dup {
			diags = append(diags, Diagnostic{File: f.Name, Line: flow.Pos.Line, Col: flow.Pos.Col,
				EndLine: flow.Pos.Line, EndCol: flow.Pos.Col + utf8.RuneCountInString(flow.Name), Severity: SevError,
				Code: CodeDuplicateFlow, Message: fmt.Sprintf("flow %q is already declared in %s", flow.Name, prev.File),
				Hint: codeIndex[CodeDuplicateFlow].Hint})
			continue
		}
		fs.byName[flow.Name] = flow
		fs.byHash[flow.Hash] = flow
		if flow.Alongside {
			fs.alongside = append(fs.alongside, flow)
		} else {
			fs.ordered = append(fs.ordered, flow)
		}
	}
	diags.Sort()
	if diags.HasErrors() {
		return nil, diags
	}
	sort.SliceStable(fs.ordered, func(i, j int) bool {
		a, b := fs.ordered[i], fs.ordered[j]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.File < b.File
	})
	sort.Slice(fs.alongside, func(i, j int) bool { return fs.alongside[i].Name < fs.alongside[j].Name })
	diags = append(diags, fs.contention()...)
	diags.Sort()
	fs.warnings = diags
	return fs, diags
}

func diagAt(file string, p Pos, code, msg string) Diagnostic {
	c := codeIndex[code]
	return Diagnostic{File: file, Line: p.Line, Col: p.Col, EndLine: p.Line, EndCol: p.Col + 1, Severity: c.Severity, Code: code, Message: msg, Hint: c.Hint}
}

// fileLoader compiles one file, collecting diagnostics.
type fileLoader struct {
	catalog *Catalog
	zone    string // the loader's; a flow's `timezone` overrides it
	doc     *YAMLDoc
	vars    *exprScope
	flow    *Flow
	// anyRoot is the free-form value being compiled (http bodies, …): a value
	// that expands too far through aliases is reported there.
	anyRoot *yaml.Node
	// badFinal marks states whose `final` is malformed (already reported): the
	// graph checks must not guess whether they were meant to be final.
	badFinal map[string]bool
	// exitKey is the position of a state's first `on`, `always` or `after` key.
	exitKey map[string]Pos
	// stateErr holds the states in which an error was reported: a state whose
	// handler or timer did not compile is not also reported as stuck, and states
	// left unreachable are marked as perhaps only following from the error.
	stateErr      map[string]bool
	firstStateErr int // line of the first error inside a state, 0 when none
}

func (l *fileLoader) add(p Pos, code, msg, hint string) {
	l.doc.ErrorAt(p, code, msg, hint)
}

// warn reports a warning at p.
func (l *fileLoader) warn(p Pos, code, msg, hint string) {
	p = l.doc.src.clamp(p)
	l.doc.AddRange(p, l.doc.src.tokenEnd(p), SevWarning, code, msg, hint)
}

func (ld *Loader) compileFile(f File) (*Flow, Diagnostics) {
	doc, root := ParseYAML(f.Name, f.Data)
	l := &fileLoader{catalog: ld.catalog, zone: ld.zone, doc: doc, badFinal: map[string]bool{}, exitKey: map[string]Pos{}, stateErr: map[string]bool{}}
	if root == nil {
		if !doc.diags.HasErrors() {
			l.add(Pos{1, 1}, CodeMissingKey, "the file is empty; a flow needs `flow`, `start`, `initial` and `states`", "start the file with `flow: <name>`")
		}
		return nil, doc.Diagnostics()
	}
	flow := l.flowFile(root)
	if flow != nil {
		flow.File = f.Name
		flow.Source = f.Data
		sum := sha256.Sum256(f.Data)
		flow.Hash = hex.EncodeToString(sum[:])
	}
	// A node reached through several aliases is checked once per alias: report
	// each problem once.
	diags := slices.Compact(doc.Diagnostics())
	if diags.HasErrors() {
		return nil, diags
	}
	return flow, diags
}

// Keys that belong to another part of a flow file, for the hint of a key
// written at the wrong indentation.
var (
	stateKeys       = []string{"enter", "on", "always", "after", "ignore", "final", "status"}
	branchKeys      = []string{"when", "set", "do", "goto"}
	topKeys         = []string{"flow", "priority", "start", "initial", "vars", "states", "migrate"}
	flowElsewhere   = elsewhere(map[string][]string{"a state": stateKeys, "a branch": branchKeys})
	stateElsewhere  = elsewhere(map[string][]string{"a branch": branchKeys, "the top level of the flow": topKeys})
	branchElsewhere = elsewhere(map[string][]string{"a state": stateKeys, "the top level of the flow": topKeys})
)

// isExtension reports a top-level key that fixit ignores: `x-…` keys hold what
// YAML anchors name (`x-common: &common …`).
func isExtension(k string) bool { return strings.HasPrefix(k, "x-") }

func elsewhere(m map[string][]string) Elsewhere {
	out := Elsewhere{}
	for where, keys := range m {
		for _, k := range keys {
			out[k] = where
		}
	}
	return out
}

var identRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

func (l *fileLoader) name(n *yaml.Node, what string) (string, bool) {
	if !l.doc.Expect(n, yaml.ScalarNode, what) {
		return "", false
	}
	if !identRe.MatchString(n.Value) {
		l.doc.Error(n, CodeBadName, fmt.Sprintf("%s %q is not a valid name", what, n.Value), "")
		return n.Value, false
	}
	return n.Value, true
}

func (l *fileLoader) flowFile(root *yaml.Node) *Flow {
	if !l.doc.Expect(root, yaml.MappingNode, "a flow file") {
		return nil
	}
	f, _ := l.doc.Fields(root, FlowSpec, isExtension, nil, flowElsewhere)
	flow := &Flow{Pos: nodePos(root), States: map[string]*State{}, Vars: map[string]any{}}
	l.flow = flow
	if n := f["flow"]; n != nil {
		flow.Name, _ = l.name(n, "flow name")
		flow.Pos = nodePos(n)
	}
	if n := f["description"]; n != nil && l.doc.Expect(n, yaml.ScalarNode, "description") {
		flow.Description = n.Value
	}
	if n := f["priority"]; n != nil && l.doc.Expect(n, yaml.ScalarNode, "priority") {
		p, err := strconv.Atoi(n.Value)
		if err != nil {
			l.doc.Error(n, CodeWrongType, fmt.Sprintf("priority must be an integer, not %q", n.Value), "")
		}
		flow.Priority = p
	}
	flow.Timezone = l.zone
	if n := f["timezone"]; n != nil && l.doc.Expect(n, yaml.ScalarNode, "timezone") {
		if _, err := loadZone(n.Value); err != nil {
			l.doc.Error(n, CodeUnknownTimezone, err.Error(), zoneHint(n.Value))
		} else {
			flow.Timezone = n.Value
		}
	}
	l.declareVars(f["vars"])
	l.vars.zone = flow.Timezone
	// State names are needed before branches are compiled (goto checks come later,
	// but `set` and guards only need vars).
	if n := f["start"]; n != nil {
		l.start(n)
	}
	statesOK := false
	if n := f["states"]; n != nil && l.doc.Expect(n, yaml.MappingNode, "states") {
		statesOK = true
		for _, p := range l.doc.Pairs(n) {
			name, _ := l.name(p.Key, "state name")
			before := len(l.doc.diags)
			st := l.state(p.Val, name, nodePos(p.Key))
			for _, d := range l.doc.diags[before:] {
				if d.Severity == SevError {
					l.stateErr[name] = true
					if l.firstStateErr == 0 || d.Line < l.firstStateErr {
						l.firstStateErr = d.Line
					}
				}
			}
			if st != nil {
				flow.States[name] = st
				flow.StateNames = append(flow.StateNames, name)
			}
		}
		if len(flow.StateNames) == 0 {
			statesOK = false
			l.doc.Error(n, CodeMissingKey, "states is empty", "declare at least one state")
		}
	}
	if n := f["migrate"]; n != nil {
		l.migrate(n)
	}
	if n := f["initial"]; n != nil {
		if l.doc.Expect(n, yaml.ScalarNode, "initial") {
			flow.Initial = n.Value
			if statesOK {
				// Without a states mapping every name would be unknown: the
				// missing or malformed states are reported already.
				l.stateRef(n.Value, nodePos(n), "initial")
			}
		}
	} else if f["states"] != nil {
		// fields reported a generic missing-key; replace it with the specific code.
		// (It is not the last diagnostic: start and states were compiled since.)
		for i, d := range l.doc.diags {
			if d.Code == CodeMissingKey && d.Message == `flow has no "initial"` {
				l.doc.diags = append(l.doc.diags[:i], l.doc.diags[i+1:]...)
				break
			}
		}
		l.doc.Error(root, CodeMissingInitial, "the flow has no initial state", fmt.Sprintf("add `initial: %s`", first(flow.StateNames)))
	}
	l.graph()
	return flow
}

// migrate reads the old state → new state mapping; targets must exist.
func (l *fileLoader) migrate(n *yaml.Node) {
	l.flow.Migrate = map[string]string{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if !l.doc.Expect(n, yaml.MappingNode, "migrate") {
		return
	}
	for _, p := range l.doc.Pairs(n) {
		if !l.doc.Expect(p.Val, yaml.ScalarNode, "a migrate target") {
			continue
		}
		if l.flow.States[p.Val.Value] == nil && len(l.flow.States) > 0 {
			l.stateRef(p.Val.Value, nodePos(p.Val), "migrate")
			continue
		}
		l.flow.Migrate[p.Key.Value] = p.Val.Value
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "<state>"
	}
	return s[0]
}

func (l *fileLoader) declareVars(n *yaml.Node) {
	l.vars0()
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if !l.doc.Expect(n, yaml.MappingNode, "vars") {
		return
	}
	for _, p := range l.doc.Pairs(n) {
		name, ok := l.name(p.Key, "variable name")
		if !ok {
			continue
		}
		var v any
		if err := p.Val.Decode(&v); err != nil {
			l.doc.Error(p.Val, CodeWrongType, fmt.Sprintf("default of %s: %v", name, err), "")
			continue
		}
		l.flow.Vars[name] = normalizeValue(v)
		l.flow.VarNames = append(l.flow.VarNames, name)
		l.vars.declared[name] = true
		l.vars.names = append(l.vars.names, name)
	}
}

func (l *fileLoader) vars0() {
	l.vars = &exprScope{declared: map[string]bool{}}
}

func (l *fileLoader) start(n *yaml.Node) {
	l.flow.StartPos = nodePos(n)
	if n.Kind == yaml.ScalarNode || n.Kind == yaml.SequenceNode {
		l.flow.StartOn, l.flow.StartOnPos = l.startTypes(n)
		return
	}
	if !l.doc.Expect(n, yaml.MappingNode, "start") {
		return
	}
	f, _ := l.doc.Fields(n, StartSpec, nil, nil, nil)
	if on := f["on"]; on != nil {
		l.flow.StartPos = nodePos(on)
		l.flow.StartOn, l.flow.StartOnPos = l.startTypes(on)
	}
	if w := f["when"]; w != nil {
		l.flow.startWhen, _ = l.guard(w)
	}
	if a := f["alongside"]; a != nil {
		l.flow.Alongside, _ = l.doc.Bool(a, "alongside")
		l.flow.AlongsidePos = nodePos(a)
	}
}

// startTypes reads `start.on` and the position of each type.
func (l *fileLoader) startTypes(n *yaml.Node) ([]string, []Pos) {
	types := l.eventTypes(n, etStart)
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		nodes = nodes[:0]
		for _, c := range n.Content {
			nodes = append(nodes, Resolve(c))
		}
	}
	pos := make([]Pos, 0, len(types))
	for _, c := range nodes {
		if len(pos) < len(types) && c.Kind == yaml.ScalarNode && c.Value == types[len(pos)] {
			pos = append(pos, nodePos(c))
		}
	}
	for len(pos) < len(types) {
		pos = append(pos, nodePos(n))
	}
	return types, pos
}

// etWhere is where a list of event types stands.
type etWhere int

const (
	etStart  etWhere = iota // start.on: the types of a dialog's own events cannot start one
	etIgnore                // a state's ignore
	etUntil                 // handoff.until: an unknown type would hold the dialog for ever
)

// eventTypes reads one event type or a list of them.
func (l *fileLoader) eventTypes(n *yaml.Node, where etWhere) []string {
	start := where == etStart
	var nodes []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		nodes = []*yaml.Node{n}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			nodes = append(nodes, Resolve(c))
		}
	default:
		l.doc.Error(n, CodeWrongType, fmt.Sprintf("event types must be a string or a list, not %s", KindName(n)), "")
		return nil
	}
	var out []string
	for _, c := range nodes {
		if !l.doc.Expect(c, yaml.ScalarNode, "an event type") {
			continue
		}
		if start && (c.Value == "timer" || c.Value == "action.done" || c.Value == "action.failed") {
			l.doc.Error(c, CodeUnknownEvent, fmt.Sprintf("%s cannot start a dialog: it belongs to an existing one", c.Value), "start on an inbound event such as waba.message")
			continue
		}
		if l.eventType(c.Value, nodePos(c), false, where == etUntil) {
			out = append(out, c.Value)
		}
	}
	return out
}

// mention records that the flow names event type t (see Flow.Mentions).
func (l *fileLoader) mention(t string) {
	if l.flow.mentions == nil {
		l.flow.mentions = map[string]bool{}
	}
	l.flow.mentions[t] = true
}

// eventType checks one event type; handler is set for the key of an `on`
// handler. strict makes a type fixit does not know an error even where it is
// otherwise let through with a warning.
func (l *fileLoader) eventType(t string, p Pos, handler, strict bool) bool {
	for _, e := range EventTypes {
		if e.Name == t {
			if t == "timer" {
				if handler {
					l.add(p, CodeUnknownEvent, "timer events are handled by `after`, not by `on`", "move this handler under `after: { <duration>: … }`")
				} else {
					l.add(p, CodeUnknownEvent, "timer cannot be named here: a state's timers are handled by its `after`", "remove it")
				}
				return false
			}
			l.mention(t)
			return true
		}
	}
	for _, prefix := range []string{"okdesk.", "onec.", "telegram."} {
		if strings.HasPrefix(t, prefix) && identRe.MatchString(strings.TrimPrefix(t, prefix)) {
			if prefix == "onec." {
				l.mention(t)
				return true // 1C events are the integrator's own
			}
			if strict {
				l.add(p, CodeUnknownEvent, fmt.Sprintf("event type %q is not one fixit knows: a handoff waiting for it would never end", t), didYouMeanHint(t, eventTypeNames()))
				return false
			}
			l.warn(p, CodeUnknownEvent, fmt.Sprintf("event type %q is not one fixit knows; it is accepted because %s* passes every type through", t, prefix), didYouMeanHint(t, eventTypeNames()))
			l.mention(t)
			return true
		}
	}
	hint := didYouMeanHint(t, eventTypeNames())
	if hint == "" {
		hint = codeIndex[CodeUnknownEvent].Hint
	}
	l.add(p, CodeUnknownEvent, fmt.Sprintf("unknown event type %q", t), hint)
	return false
}

func didYouMeanHint(s string, cands []string) string {
	if m := DidYouMean(s, cands); m != "" {
		return fmt.Sprintf("did you mean %q?", m)
	}
	return ""
}

// stateRefs collects state references to check once all states are known.
func (l *fileLoader) stateRef(name string, p Pos, what string) {
	if _, ok := l.flow.States[name]; ok {
		return
	}
	// States are compiled before references are checked (flowFile order), so this
	// is final unless called before states: gotos are checked in graph().
	hint := didYouMeanHint(name, l.flow.StateNames)
	if hint == "" && len(l.flow.StateNames) > 0 {
		hint = "states are: " + strings.Join(l.flow.StateNames, ", ")
	}
	l.add(p, CodeUnknownState, fmt.Sprintf("%s names unknown state %q", what, name), hint)
}

func (l *fileLoader) state(n *yaml.Node, name string, p Pos) *State {
	st := &State{Name: name, Pos: p, On: map[string][]*Branch{}, Ignore: map[string]bool{}, FinalStatus: dialog.Finished}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return st // an empty state: reported by graph checks (no way out)
	}
	if !l.doc.Expect(n, yaml.MappingNode, fmt.Sprintf("state %q", name)) {
		return st
	}
	f, _ := l.doc.Fields(n, StateSpec, nil, nil, stateElsewhere)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "on" || k == "always" || k == "after" {
			l.exitKey[name] = nodePos(n.Content[i])
			break
		}
	}
	if d := f["description"]; d != nil && l.doc.Expect(d, yaml.ScalarNode, "description") {
		st.Description = d.Value
	}
	if e := f["enter"]; e != nil {
		st.Enter = l.actionList(e, "enter")
	}
	if on := f["on"]; on != nil && l.doc.Expect(on, yaml.MappingNode, "on") {
		for _, pr := range l.doc.Pairs(on) {
			if !l.eventType(pr.Key.Value, nodePos(pr.Key), true, false) {
				continue
			}
			st.On[pr.Key.Value] = l.branches(pr.Val, "on "+pr.Key.Value)
			st.OnOrder = append(st.OnOrder, pr.Key.Value)
		}
	}
	if a := f["always"]; a != nil {
		st.Always = l.branches(a, "always")
	}
	if a := f["after"]; a != nil {
		st.Timers = l.timers(a)
	}
	if ig := f["ignore"]; ig != nil {
		for _, t := range l.eventTypes(ig, etIgnore) {
			st.Ignore[t] = true
		}
	}
	if fin := f["final"]; fin != nil {
		var ok bool
		st.Final, ok = l.doc.Bool(fin, "final")
		l.badFinal[name] = !ok
	}
	if s := f["status"]; s != nil && l.doc.Expect(s, yaml.ScalarNode, "status") {
		if !contains(finalStatuses, s.Value) {
			l.doc.Error(s, CodeBadValue, fmt.Sprintf("status %q is not one of %s", s.Value, strings.Join(finalStatuses, ", ")), "")
		} else {
			st.FinalStatus = dialog.Status(s.Value)
		}
		if !st.Final && !l.badFinal[name] {
			l.doc.Warn(s, CodeFinalWithExits, "status only applies to a final state", "add `final: true` or remove `status`")
		}
	}
	return st
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (l *fileLoader) timers(n *yaml.Node) []*Timer {
	var out []*Timer
	switch n.Kind {
	case yaml.MappingNode:
		for i, p := range l.doc.Pairs(n) {
			d, ok := l.doc.Duration(p.Key, "")
			if !ok {
				continue
			}
			t := &Timer{Name: fmt.Sprintf("%s#%d", p.Key.Value, i), After: d}
			if p.Val.Kind == yaml.ScalarNode {
				t.Branch = Branch{Pos: nodePos(p.Val), Goto: p.Val.Value, GotoPos: nodePos(p.Val)}
			} else if b := l.branch(p.Val, "timer", nil); b != nil {
				t.Branch = *b
			}
			out = append(out, t)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			c = Resolve(c)
			if !l.doc.Expect(c, yaml.MappingNode, "a timer") {
				continue
			}
			var inNode *yaml.Node
			for j := 0; j+1 < len(c.Content); j += 2 {
				if c.Content[j].Value == "in" {
					inNode = Resolve(c.Content[j+1])
				}
			}
			b := l.branch(c, "timer", func(k string) bool { return k == "in" })
			if inNode == nil {
				l.doc.Error(c, CodeMissingKey, "timer has no \"in\"", "add `in: 24h`")
				continue
			}
			d, ok := l.doc.Duration(inNode, "")
			if !ok || b == nil {
				continue
			}
			out = append(out, &Timer{Name: fmt.Sprintf("%s#%d", inNode.Value, i), After: d, Branch: *b})
		}
	default:
		l.doc.Error(n, CodeWrongType, fmt.Sprintf("after must be a mapping (duration: state) or a list of timers, not %s", KindName(n)), "")
	}
	return out
}

// branches reads a handler: a list of branches, or a single branch mapping.
func (l *fileLoader) branches(n *yaml.Node, what string) []*Branch {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			items = append(items, Resolve(c))
		}
	case yaml.MappingNode:
		items = []*yaml.Node{n}
	default:
		l.doc.Error(n, CodeWrongType, fmt.Sprintf("%s must be a list of branches, not %s", what, KindName(n)), "")
		return nil
	}
	var out []*Branch
	catchAll := -1
	for i, c := range items {
		if !l.doc.Expect(c, yaml.MappingNode, "a branch") {
			continue
		}
		b := l.branch(c, "branch", nil)
		if b == nil {
			continue
		}
		if catchAll >= 0 {
			l.warn(b.Pos, CodeUnreachableBranch, fmt.Sprintf("this branch of %s can never run: branch %d before it has no `when`", what, catchAll+1), "")
		} else if b.WhenSrc == "" {
			catchAll = i
		}
		out = append(out, b)
	}
	return out
}

// branch reads one branch mapping; extra admits keys handled by the caller.
func (l *fileLoader) branch(n *yaml.Node, what string, extra func(string) bool) *Branch {
	if !l.doc.Expect(n, yaml.MappingNode, what) {
		return nil
	}
	b := &Branch{Pos: nodePos(n)}
	isAction := func(k string) bool { return l.catalog.Action(k) != nil || (extra != nil && extra(k)) }
	spec := BranchSpec
	if what == "timer" {
		spec = Object{Name: "timer", Fields: BranchSpec.Fields}
	}
	f, inline := l.doc.Fields(n, spec, isAction, l.catalog.actionNames(), branchElsewhere)
	if w := f["when"]; w != nil {
		b.when, _ = l.guard(w)
		b.WhenSrc = w.Value
	}
	if s := f["set"]; s != nil && l.doc.Expect(s, yaml.MappingNode, "set") {
		for _, p := range l.doc.Pairs(s) {
			name := p.Key.Value
			if !l.vars.declared[name] {
				hint := didYouMeanHint(name, l.vars.names)
				if hint == "" {
					hint = fmt.Sprintf("declare it: `vars: { %s: \"\" }`", name)
				}
				l.doc.Error(p.Key, CodeUnknownVar, fmt.Sprintf("set names undeclared variable %q", name), hint)
				continue
			}
			if !l.doc.Expect(p.Val, yaml.ScalarNode, "a set expression") {
				continue
			}
			prog, ok := l.expr(p.Val, p.Val.Value, 0, false)
			if ok {
				b.Set = append(b.Set, Assign{Var: name, Src: p.Val.Value, prog: prog})
			}
		}
	}
	for _, p := range inline {
		if extra != nil && extra(p.Key.Value) {
			continue
		}
		if a := l.action(p.Key, p.Val); a != nil {
			b.Actions = append(b.Actions, a)
		}
	}
	if d := f["do"]; d != nil {
		b.Actions = append(b.Actions, l.actionList(d, "do")...)
	}
	if g := f["goto"]; g != nil && l.doc.Expect(g, yaml.ScalarNode, "goto") {
		b.Goto, b.GotoPos = g.Value, nodePos(g)
	}
	return b
}

func (l *fileLoader) actionList(n *yaml.Node, what string) []*Action {
	if n.Kind == yaml.MappingNode {
		// A single action written without the list dash.
		n = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{n}, Line: n.Line, Column: n.Column}
	}
	if !l.doc.Expect(n, yaml.SequenceNode, what) {
		return nil
	}
	var out []*Action
	for _, c := range n.Content {
		c = Resolve(c)
		if !l.doc.Expect(c, yaml.MappingNode, "an action") {
			continue
		}
		ps := l.doc.Pairs(c)
		if len(ps) != 1 {
			l.doc.Error(c, CodeWrongType, fmt.Sprintf("an action is a mapping with exactly one key (the action), this one has %d", len(ps)), "start each action on its own list item: `- send: …`")
			continue
		}
		if a := l.action(ps[0].Key, ps[0].Val); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (l *fileLoader) action(k, v *yaml.Node) *Action {
	spec := l.catalog.Action(k.Value)
	if spec == nil {
		hint := didYouMeanHint(k.Value, l.catalog.actionNames())
		if hint == "" {
			hint = codeIndex[CodeUnknownAction].Hint
		}
		l.doc.Error(k, CodeUnknownAction, fmt.Sprintf("unknown action %q", k.Value), hint)
		return nil
	}
	a := &Action{Kind: spec.Name, Pos: nodePos(k), Spec: spec}
	var params []Pair
	switch {
	case v.Kind == yaml.ScalarNode && spec.Shorthand != "":
		params = []Pair{{Key: &yaml.Node{Kind: yaml.ScalarNode, Value: spec.Shorthand, Line: v.Line, Column: v.Column}, Val: v}}
	case v.Kind == yaml.MappingNode:
		params = l.doc.Pairs(v)
	default:
		want := "a mapping of parameters"
		if spec.Shorthand != "" {
			want = fmt.Sprintf("a string (the %s) or a mapping of parameters", spec.Shorthand)
		}
		l.doc.Error(v, CodeWrongType, fmt.Sprintf("%s takes %s, not %s", spec.Name, want, KindName(v)), "")
		return nil
	}
	have := map[string]bool{}
	nodes := map[string]*yaml.Node{}
	for _, p := range params {
		f, ok := spec.param(p.Key.Value)
		if !ok {
			var names []string
			for _, pf := range spec.Params {
				names = append(names, pf.Name)
			}
			hint := didYouMeanHint(p.Key.Value, names)
			if hint == "" {
				hint = fmt.Sprintf("%s takes: %s", spec.Name, strings.Join(names, ", "))
			}
			l.doc.Error(p.Key, CodeUnknownParam, fmt.Sprintf("%s has no parameter %q", spec.Name, p.Key.Value), hint)
			continue
		}
		have[f.Name] = true
		nodes[f.Name] = p.Val
		if val := l.param(spec, f, p.Val); val != nil {
			a.Params = append(a.Params, Param{Name: f.Name, Value: val})
		}
	}
	for _, f := range spec.Params {
		if f.Required && !have[f.Name] {
			l.doc.Error(k, CodeMissingParam, fmt.Sprintf("%s needs parameter %q", spec.Name, f.Name), fmt.Sprintf("add `%s:` — %s", f.Name, f.Doc))
		}
	}
	if spec.Name == "send" && !have["text"] && !have["template"] && !have["file"] {
		l.doc.Error(k, CodeMissingParam, "send needs \"text\", \"template\" or \"file\"", "write `send: \"…\"`, give `template: {name, language}` or `file: ${event.data.file}`")
	}
	if spec.Name == "send" && have["file"] && (have["buttons"] || have["list"] || have["template"]) {
		l.doc.Error(k, CodeWrongType, "send takes a file with an optional text (its caption), not with buttons, a list or a template", "")
	}
	if spec.Name == "send" && have["buttons"] && have["list"] {
		l.doc.Error(k, CodeWrongType, "send takes either buttons or a list, not both", "")
	}
	if spec.Name == "send" {
		l.checkSend(nodes)
	}
	return a
}

func (l *fileLoader) param(spec *ActionSpec, f Field, n *yaml.Node) *Value {
	switch f.Type {
	case TTemplate:
		if !l.doc.Expect(n, yaml.ScalarNode, fmt.Sprintf("%s.%s", spec.Name, f.Name)) {
			return nil
		}
		v := l.templateValue(n)
		if f.MaxLen > 0 && v != nil {
			l.checkLength(n, []limitOf{{title: connectorTitle(spec.Name), limit: f.MaxLen}}, spec.Name+"."+f.Name, false)
		}
		return v
	case TString:
		if !l.doc.Expect(n, yaml.ScalarNode, fmt.Sprintf("%s.%s", spec.Name, f.Name)) {
			return nil
		}
		if len(f.Enum) > 0 && !contains(f.Enum, n.Value) {
			l.doc.Error(n, CodeBadValue, fmt.Sprintf("%s.%s is %q; allowed: %s", spec.Name, f.Name, n.Value, strings.Join(f.Enum, ", ")), "")
			return nil
		}
		return &Value{kind: vLit, lit: n.Value}
	case TBool:
		if n.Kind == yaml.ScalarNode && HasTemplate(n.Value) {
			return l.templateValue(n)
		}
		b, ok := l.doc.Bool(n, spec.Name+"."+f.Name)
		if !ok {
			return nil
		}
		return &Value{kind: vLit, lit: b}
	case TInt:
		if n.Kind == yaml.ScalarNode && HasTemplate(n.Value) {
			return l.templateValue(n)
		}
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			l.doc.Error(n, CodeWrongType, fmt.Sprintf("%s.%s must be an integer", spec.Name, f.Name), "")
			return nil
		}
		return &Value{kind: vLit, lit: i}
	case TDuration:
		if n.Kind == yaml.ScalarNode && HasTemplate(n.Value) {
			return l.templateValue(n)
		}
		if _, ok := l.doc.Duration(n, spec.Name+"."+f.Name); !ok {
			return nil
		}
		return &Value{kind: vLit, lit: n.Value}
	case TEventTypes:
		types := l.eventTypes(n, etUntil)
		list := make([]*Value, len(types))
		for i, t := range types {
			list[i] = &Value{kind: vLit, lit: t}
		}
		return &Value{kind: vList, list: list}
	case TTemplates:
		if !l.doc.Expect(n, yaml.MappingNode, spec.Name+"."+f.Name) {
			return nil
		}
		v := &Value{kind: vMap}
		for _, p := range l.doc.Pairs(n) {
			if l.doc.Expect(p.Val, yaml.ScalarNode, spec.Name+"."+f.Name+"."+p.Key.Value) {
				if tv := l.templateValue(p.Val); tv != nil {
					v.m = append(v.m, Param{Name: p.Key.Value, Value: tv})
				}
			}
		}
		return v
	case TAny:
		l.anyRoot = n
		return l.anyValue(n)
	case TButtons:
		return l.buttons(n)
	case TList:
		return l.listMsg(n)
	case TWATemplate:
		return l.waTemplate(n, spec.Name+"."+f.Name)
	case TFile:
		return l.fileRef(n, spec.Name+"."+f.Name)
	case TFiles:
		if n.Kind == yaml.SequenceNode {
			v := &Value{kind: vList}
			for i, c := range n.Content {
				if cv := l.fileRef(Resolve(c), fmt.Sprintf("%s.%s[%d]", spec.Name, f.Name, i)); cv != nil {
					v.list = append(v.list, cv)
				}
			}
			return v
		}
		if n.Kind == yaml.ScalarNode && !HasTemplate(n.Value) {
			l.doc.Error(n, CodeBadValue, fmt.Sprintf("%s.%s must be a list of files or one ${expr} that gives files", spec.Name, f.Name),
				`e.g. files: ["${event.data.file}"] or files: "${vars.photos}"`)
			return nil
		}
		return l.fileRef(n, spec.Name+"."+f.Name)
	}
	return l.anyValue(n)
}

// fileRef compiles one file: an ${expr} that gives a stored file, or a literal
// https URL.
func (l *fileLoader) fileRef(n *yaml.Node, name string) *Value {
	if !l.doc.Expect(n, yaml.ScalarNode, name) {
		return nil
	}
	if !HasTemplate(n.Value) && !strings.HasPrefix(strings.TrimSpace(n.Value), "https://") {
		l.doc.Error(n, CodeBadValue, fmt.Sprintf("%s is %q: want a stored file (${event.data.file}) or an https URL", name, n.Value),
			"files that fixit downloaded are in event.data.file and event.data.files")
		return nil
	}
	return l.templateValue(n)
}

func (l *fileLoader) templateValue(n *yaml.Node) *Value {
	t, ok := l.template(n)
	if !ok {
		return nil
	}
	if s, lit := t.literal(); lit {
		return &Value{kind: vLit, lit: s}
	}
	return &Value{kind: vTmpl, tmpl: t}
}

// anyValue compiles any YAML value: strings become templates, other scalars literals.
func (l *fileLoader) anyValue(n *yaml.Node) *Value {
	// Aliases of aliases expand exponentially ("billion laughs"): a few lines
	// could otherwise make the loader build billions of values.
	if !l.doc.Expand(l.anyRoot) {
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		v := &Value{kind: vList}
		for _, c := range n.Content {
			if cv := l.anyValue(Resolve(c)); cv != nil {
				v.list = append(v.list, cv)
			}
		}
		return v
	case yaml.MappingNode:
		v := &Value{kind: vMap}
		for _, p := range l.doc.Pairs(n) {
			if cv := l.anyValue(p.Val); cv != nil {
				v.m = append(v.m, Param{Name: p.Key.Value, Value: cv})
			}
		}
		return v
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return l.templateValue(n)
		}
		var x any
		_ = n.Decode(&x)
		return &Value{kind: vLit, lit: normalizeValue(x)}
	}
	return nil
}

func (l *fileLoader) buttons(n *yaml.Node) *Value {
	if !l.doc.Expect(n, yaml.SequenceNode, "send.buttons") {
		return nil
	}
	v := &Value{kind: vList}
	for _, c := range n.Content {
		c = Resolve(c)
		var id, title *yaml.Node
		switch c.Kind {
		case yaml.ScalarNode:
			id, title = c, c
		case yaml.MappingNode:
			f, _ := l.doc.Fields(c, Object{Name: "button", Fields: []Field{{Name: "id", Type: TTemplate, Required: true}, {Name: "title", Type: TTemplate, Required: true}}}, nil, nil, nil)
			id, title = f["id"], f["title"]
		default:
			l.doc.Error(c, CodeWrongType, "a button is a title or {id, title}", "")
			continue
		}
		if id == nil || title == nil || !l.doc.Expect(id, yaml.ScalarNode, "button id") || !l.doc.Expect(title, yaml.ScalarNode, "button title") {
			continue
		}
		iv, tv := l.templateValue(id), l.templateValue(title)
		if iv != nil && tv != nil {
			v.list = append(v.list, &Value{kind: vMap, m: []Param{{"id", iv}, {"title", tv}}})
		}
	}
	return v
}

func (l *fileLoader) listMsg(n *yaml.Node) *Value {
	if !l.doc.Expect(n, yaml.MappingNode, "send.list") {
		return nil
	}
	spec := Object{Name: "list", Fields: []Field{{Name: "button", Type: TTemplate, Required: true}, {Name: "section", Type: TTemplate}, {Name: "rows", Type: TObject, Required: true}}}
	f, _ := l.doc.Fields(n, spec, nil, nil, nil)
	v := &Value{kind: vMap}
	for _, k := range []string{"button", "section"} {
		if x := f[k]; x != nil && l.doc.Expect(x, yaml.ScalarNode, "list."+k) {
			if tv := l.templateValue(x); tv != nil {
				v.m = append(v.m, Param{k, tv})
			}
		}
	}
	rows := f["rows"]
	if rows == nil || !l.doc.Expect(rows, yaml.SequenceNode, "list.rows") {
		return v
	}
	rv := &Value{kind: vList}
	rowSpec := Object{Name: "row", Fields: []Field{{Name: "id", Type: TTemplate, Required: true}, {Name: "title", Type: TTemplate, Required: true}, {Name: "description", Type: TTemplate}}}
	for _, c := range rows.Content {
		c = Resolve(c)
		var row *Value
		if c.Kind == yaml.ScalarNode {
			t := l.templateValue(c)
			if t == nil {
				continue
			}
			row = &Value{kind: vMap, m: []Param{{"id", t}, {"title", t}}}
		} else if l.doc.Expect(c, yaml.MappingNode, "a list row") {
			rf, _ := l.doc.Fields(c, rowSpec, nil, nil, nil)
			row = &Value{kind: vMap}
			for _, k := range []string{"id", "title", "description"} {
				if x := rf[k]; x != nil && l.doc.Expect(x, yaml.ScalarNode, "row "+k) {
					if tv := l.templateValue(x); tv != nil {
						row.m = append(row.m, Param{k, tv})
					}
				}
			}
		}
		if row != nil {
			rv.list = append(rv.list, row)
		}
	}
	v.m = append(v.m, Param{"rows", rv})
	return v
}

func (l *fileLoader) waTemplate(n *yaml.Node, what string) *Value {
	if !l.doc.Expect(n, yaml.MappingNode, what) {
		return nil
	}
	spec := Object{Name: "template", Fields: []Field{{Name: "name", Type: TTemplate, Required: true}, {Name: "language", Type: TTemplate}, {Name: "params", Type: TObject}}}
	f, _ := l.doc.Fields(n, spec, nil, nil, nil)
	v := &Value{kind: vMap}
	for _, k := range []string{"name", "language"} {
		if x := f[k]; x != nil && l.doc.Expect(x, yaml.ScalarNode, what+"."+k) {
			if tv := l.templateValue(x); tv != nil {
				v.m = append(v.m, Param{k, tv})
			}
		}
	}
	if p := f["params"]; p != nil && l.doc.Expect(p, yaml.SequenceNode, what+".params") {
		pv := &Value{kind: vList}
		for _, c := range p.Content {
			c = Resolve(c)
			if l.doc.Expect(c, yaml.ScalarNode, "a template parameter") {
				if tv := l.templateValue(c); tv != nil {
					pv.list = append(pv.list, tv)
				}
			}
		}
		v.m = append(v.m, Param{"params", pv})
	}
	return v
}

// guard compiles a `when` expression (must be bool).
func (l *fileLoader) guard(n *yaml.Node) (*vm.Program, bool) {
	if n.Kind != yaml.ScalarNode {
		l.doc.Error(n, CodeWrongType, fmt.Sprintf("when must be an expression, not %s", KindName(n)), "")
		return nil, false
	}
	return l.expr(n, n.Value, 0, true)
}

// expr compiles src, found at rune offset base of scalar n, reporting errors at
// their exact place in the file.
func (l *fileLoader) expr(n *yaml.Node, src string, base int, asBool bool) (*vm.Program, bool) {
	prog, errs := compileExpr(src, asBool, l.vars)
	for _, e := range errs {
		from, to := l.doc.ScalarRange(n, base+e.offset, base+max(e.end, e.offset))
		l.doc.AddRange(from, to, codeIndex[e.code].Severity, e.code, e.message, e.hint)
	}
	return prog, len(errs) == 0
}

// template compiles a scalar that may hold ${expr} pieces.
func (l *fileLoader) template(n *yaml.Node) (*Template, bool) {
	segs, bad := splitTemplate(n.Value)
	if bad >= 0 {
		from, to := l.doc.ScalarRange(n, bad, bad+2)
		l.doc.AddRange(from, to, SevError, CodeBadTemplate, "unclosed ${ in template", "")
		return nil, false
	}
	t := &Template{}
	ok := true
	for _, s := range segs {
		if !s.isExpr {
			t.parts = append(t.parts, tmplPart{lit: s.lit})
			continue
		}
		prog, good := l.expr(n, s.src, s.offset, false)
		ok = ok && good
		t.parts = append(t.parts, tmplPart{src: s.src, prog: prog})
	}
	t.single = len(t.parts) == 1 && t.parts[0].src != ""
	return t, ok
}

// graph runs the whole-flow checks once every state is known.
func (l *fileLoader) graph() {
	f := l.flow
	check := func(b *Branch, what string) {
		if b.Goto != "" {
			l.stateRef(b.Goto, b.GotoPos, what)
		}
	}
	for _, name := range f.StateNames {
		st := f.States[name]
		for _, t := range st.OnOrder {
			for _, b := range st.On[t] {
				check(b, "goto")
			}
		}
		for _, b := range st.Always {
			check(b, "goto")
		}
		for _, t := range st.Timers {
			check(&t.Branch, "after")
		}
	}
	if f.Initial == "" || f.States[f.Initial] == nil {
		return
	}
	// Reachability from the initial state.
	reached := map[string]bool{f.Initial: true}
	queue := []string{f.Initial}
	for len(queue) > 0 {
		st := f.States[queue[0]]
		queue = queue[1:]
		for _, next := range st.exits() {
			if f.States[next] != nil && !reached[next] {
				reached[next] = true
				queue = append(queue, next)
			}
		}
	}
	for _, name := range f.StateNames {
		st := f.States[name]
		if !reached[name] {
			msg := fmt.Sprintf("state %q cannot be reached from the initial state %q", name, f.Initial)
			if l.firstStateErr > 0 {
				msg += fmt.Sprintf(" (perhaps only because of the error at line %d)", l.firstStateErr)
			}
			l.warn(st.Pos, CodeUnreachableState, msg, "")
		}
		waits := len(st.On) > 0 || len(st.Always) > 0 || len(st.Timers) > 0
		if !st.Final && !waits && !l.badFinal[name] && !l.stateErr[name] {
			l.add(st.Pos, CodeNoWayOut, fmt.Sprintf("state %q is not final and has no handler, timer or goto: a dialog there is stuck", name), "")
		}
		if st.Final && waits {
			p, ok := l.exitKey[name]
			if !ok {
				p = st.Pos
			}
			l.warn(p, CodeFinalWithExits, fmt.Sprintf("final state %q has handlers or timers that never run", name), "")
		}
	}
	l.eventlessLoops()
}

// exits lists the states a state can go to.
func (st *State) exits() []string {
	var out []string
	for _, t := range st.OnOrder {
		for _, b := range st.On[t] {
			if b.Goto != "" {
				out = append(out, b.Goto)
			}
		}
	}
	for _, b := range st.Always {
		if b.Goto != "" {
			out = append(out, b.Goto)
		}
	}
	for _, t := range st.Timers {
		if t.Goto != "" {
			out = append(out, t.Goto)
		}
	}
	return out
}

// eventlessLoops finds cycles made only of unguarded `always` branches.
func (l *fileLoader) eventlessLoops() {
	f := l.flow
	next := map[string]*Branch{}
	for _, name := range f.StateNames {
		for _, b := range f.States[name].Always {
			if b.WhenSrc == "" && b.Goto != "" && f.States[b.Goto] != nil {
				next[name] = b
				break
			}
		}
	}
	reported := map[string]bool{}
	for _, name := range f.StateNames {
		seen := map[string]int{}
		var path []string
		for cur := name; ; {
			if i, ok := seen[cur]; ok {
				cycle := path[i:]
				if !reported[cycle[0]] && cycle[0] == name {
					for _, c := range cycle {
						reported[c] = true
					}
					b := next[name]
					l.add(b.GotoPos, CodeEventlessLoop, fmt.Sprintf("states loop without waiting for an event: %s → %s", strings.Join(cycle, " → "), cycle[0]), "")
				}
				break
			}
			b, ok := next[cur]
			if !ok {
				break
			}
			seen[cur] = len(path)
			path = append(path, cur)
			cur = b.Goto
		}
	}
}
