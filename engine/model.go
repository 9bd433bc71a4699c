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
	ordered   []*Flow // start order of the ordinary flows: priority desc, then file name
	alongside []*Flow // the alongside flows, by name
	byName    map[string]*Flow
	byHash    map[string]*Flow
	warnings  Diagnostics
	loader    *Loader
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

// Alongside returns the alongside flows, by name (nil when there are none).
func (fs *FlowSet) Alongside() []*Flow { return fs.alongside }

// AlongsideFor returns the alongside flows that mention event type t (see
// Flow.Mentions), by name: those an event of type t is offered to.
func (fs *FlowSet) AlongsideFor(t string) []*Flow {
	var out []*Flow
	for _, f := range fs.alongside {
		if f.Mentions(t) {
			out = append(out, f)
		}
	}
	return out
}

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
	// StartPos is where `start` (its `on`) is written; StartOnPos has the
	// position of each of StartOn's types.
	StartPos   Pos
	StartOnPos []Pos
	// Alongside is `start.alongside`: the flow is offered every event it takes
	// besides the ordinary routing, and its dialogs hold their keys apart (in a
	// scope named after the flow; see KeyScope). AlongsidePos is where it is set.
	Alongside    bool
	AlongsidePos Pos
	// mentions holds every event type the flow names: in `start.on`, as a
	// handler, in `ignore` and in a handoff's `until`.
	mentions map[string]bool

	Initial  string
	VarNames []string       // in file order
	Vars     map[string]any // defaults

	States     map[string]*State
	StateNames []string // in file order

	// Migrate is nil when live dialogs stay pinned to their version; otherwise
	// this version adopts them on reload, renaming states old → new as listed.
	Migrate map[string]string
}

// HasStartGuard reports whether the flow's start has a `when`.
func (f *Flow) HasStartGuard() bool { return f.startWhen != nil }

// Mentions reports whether the flow names event type t anywhere: in `start.on`,
// as a handler, in an `ignore` or in a handoff's `until`. An alongside flow is
// offered only the events of types it mentions.
func (f *Flow) Mentions(t string) bool { return f.mentions[t] }

// KeyScope is the scope in which the flow's dialogs bind their correlation keys:
// "" (shared by every ordinary flow: a key routes to one of their dialogs) or,
// for an alongside flow, the flow's name.
func (f *Flow) KeyScope() string {
	if f.Alongside {
		return f.Name
	}
	return ""
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
