package engine

import (
	"sort"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/expr-lang/expr/vm"
)

// FlowSet is an immutable, fully validated set of flows. It is built by the loader
// in one piece or not at all, and swapped as a whole on reload.
type FlowSet struct {
	ordered  []*Flow // start order: priority desc, then file name
	byName   map[string]*Flow
	byHash   map[string]*Flow
	warnings Diagnostics
	loader   *Loader
}

// Loader returns the loader that built the set: older versions of its flows
// (kept by running dialogs) are compiled with it.
func (fs *FlowSet) Loader() *Loader { return fs.loader }

// Flows returns the flows sorted by name.
func (fs *FlowSet) Flows() []*Flow {
	out := make([]*Flow, 0, len(fs.byName))
	for _, f := range fs.byName {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Flow returns the flow with the given name, or nil.
func (fs *FlowSet) Flow(name string) *Flow { return fs.byName[name] }

// ByHash returns the flow with the given content hash, or nil.
func (fs *FlowSet) ByHash(hash string) *Flow { return fs.byHash[hash] }

// Warnings returns the warnings found while loading the set.
func (fs *FlowSet) Warnings() Diagnostics { return fs.warnings }

// Len is the number of flows.
func (fs *FlowSet) Len() int { return len(fs.byName) }

// Flow is one compiled flow.
type Flow struct {
	Name        string
	Description string
	File        string
	Hash        string // hex SHA-256 of the file's bytes
	Source      []byte
	Priority    int
	Pos         Pos
	// Timezone is where parse_time reads times written without a zone: the
	// flow's `timezone`, else its loader's.
	Timezone string

	StartOn   []string
	startWhen *vm.Program

	Initial  string
	VarNames []string       // in file order
	Vars     map[string]any // defaults

	States     map[string]*State
	StateNames []string // in file order

	// Migrate is nil when live dialogs stay pinned to their version; otherwise
	// this version adopts them on reload, renaming states old → new as listed.
	Migrate map[string]string
}

// MigrateTarget returns the state a dialog waiting in state of an older version
// moves to, and whether this version has it.
func (f *Flow) MigrateTarget(state string) (string, bool) {
	target := state
	if to, ok := f.Migrate[state]; ok {
		target = to
	}
	return target, f.States[target] != nil
}

// State is one compiled state.
type State struct {
	Name        string
	Description string
	Pos         Pos
	Enter       []*Action
	On          map[string][]*Branch
	OnOrder     []string // event types in file order
	Always      []*Branch
	Timers      []*Timer
	Ignore      map[string]bool
	Final       bool
	FinalStatus dialog.Status // finished, abandoned or failed
}

// Branch is one guarded branch: when → set → actions → goto.
type Branch struct {
	Pos     Pos
	WhenSrc string
	when    *vm.Program
	Set     []Assign
	Actions []*Action
	Goto    string // "" = stay
	GotoPos Pos
}

// Assign is one `set` entry.
type Assign struct {
	Var  string
	Src  string
	prog *vm.Program
}

// Timer is one `after` timer of a state.
type Timer struct {
	Name  string // stable within the state, e.g. "24h#0"
	After time.Duration
	Branch
}

// Written returns the timer's duration as the flow's author wrote it ("48h").
func (t *Timer) Written() string {
	d, _, _ := strings.Cut(t.Name, "#")
	return d
}

// Action is one compiled action with its parameters.
type Action struct {
	Kind   string
	Pos    Pos
	Spec   *ActionSpec
	Params []Param
}

// Param is one named action parameter.
type Param struct {
	Name  string
	Value *Value
}

// Value is a compiled parameter value: a literal, a template, a list or a mapping.
type Value struct {
	lit  any
	tmpl *Template
	list []*Value
	m    []Param
	kind valueKind
}

type valueKind uint8

const (
	vLit valueKind = iota
	vTmpl
	vList
	vMap
)
