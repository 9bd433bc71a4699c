package scenario

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
)

// Coverage records which states and branches of each flow the worlds sharing it
// reached. A state counts when a dialog entered it; a branch (an `on` branch, an
// `always` branch or a timer) when it was taken. The interpreter's history names
// every guard it tries by its branch's place in the file, so coverage reads the
// step's result. Steps that failed at run time are rolled
// back by the interpreter and count for nothing.
type Coverage struct {
	flows map[string]*flowCov // by flow hash
}

type flowCov struct {
	flow     *engine.Flow
	byPos    map[engine.Pos][]*engine.Branch // a YAML alias can compile one node twice
	states   map[string]bool
	branches map[*engine.Branch]bool
}

// NewCoverage returns an empty record.
func NewCoverage() *Coverage { return &Coverage{flows: map[string]*flowCov{}} }

func (c *Coverage) of(f *engine.Flow) *flowCov {
	fc := c.flows[f.Hash]
	if fc == nil {
		fc = &flowCov{flow: f, byPos: map[engine.Pos][]*engine.Branch{}, states: map[string]bool{}, branches: map[*engine.Branch]bool{}}
		for _, name := range f.StateNames {
			for _, b := range branchesOf(f.States[name]) {
				fc.byPos[b.b.Pos] = append(fc.byPos[b.b.Pos], b.b)
			}
		}
		c.flows[f.Hash] = fc
	}
	return fc
}

// record notes what one successful step reached: the states it entered and the
// branches whose guards held (a branch without a guard holds).
func (c *Coverage) record(f *engine.Flow, res engine.Result) {
	fc := c.of(f)
	for _, h := range res.History {
		if h.Kind == dialog.HistTransition {
			fc.states[h.To] = true
		}
	}
	for _, g := range res.Guards {
		if g.Result {
			for _, b := range fc.byPos[engine.Pos{Line: g.Line, Col: g.Col}] {
				fc.branches[b] = true
			}
		}
	}
}

// FlowCoverage is the coverage of one flow.
type FlowCoverage struct {
	Flow, File      string
	States, Reached int // states in the flow, states entered
	Branches, Taken int // branches in the flow, branches taken
	Missing         []Missing
}

// Missing is a state or branch that nothing reached.
type Missing struct {
	Pos  engine.Pos
	What string
}

// StatePercent and BranchPercent are the shares reached, 0–100.
func (fc FlowCoverage) StatePercent() float64 { return pct(fc.Reached, fc.States) }

// BranchPercent is the share of branches taken, 0–100.
func (fc FlowCoverage) BranchPercent() float64 { return pct(fc.Taken, fc.Branches) }

func pct(n, of int) float64 {
	if of == 0 {
		return 100
	}
	return 100 * float64(n) / float64(of)
}

// sim.Report returns the coverage of every flow of fs, by flow name.
func (c *Coverage) Report(fs *engine.FlowSet) []FlowCoverage {
	var out []FlowCoverage
	for _, f := range fs.Flows() {
		fc := c.of(f)
		r := FlowCoverage{Flow: f.Name, File: f.File}
		for _, name := range f.StateNames {
			st := f.States[name]
			r.States++
			if fc.states[name] {
				r.Reached++
			} else {
				r.Missing = append(r.Missing, Missing{Pos: st.Pos, What: "state " + name + " never entered"})
			}
			for _, b := range branchesOf(st) {
				r.Branches++
				if fc.branches[b.b] {
					r.Taken++
				} else {
					r.Missing = append(r.Missing, Missing{Pos: b.b.Pos, What: "branch never taken: " + b.label})
				}
			}
		}
		sort.SliceStable(r.Missing, func(i, j int) bool {
			a, b := r.Missing[i].Pos, r.Missing[j].Pos
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		out = append(out, r)
	}
	return out
}

type labelled struct {
	b     *engine.Branch
	label string
}

// branchesOf lists a state's branches: `on` handlers in file order, `always`, timers.
func branchesOf(st *engine.State) []labelled {
	var out []labelled
	guard := func(b *engine.Branch) string {
		if b.WhenSrc == "" {
			return ""
		}
		return " (when " + oneLine(b.WhenSrc) + ")"
	}
	for _, typ := range st.OnOrder {
		for i, b := range st.On[typ] {
			out = append(out, labelled{b, fmt.Sprintf("%s: on %s, branch %d%s", st.Name, typ, i+1, guard(b))})
		}
	}
	for i, b := range st.Always {
		out = append(out, labelled{b, fmt.Sprintf("%s: always, branch %d%s", st.Name, i+1, guard(b))})
	}
	for _, t := range st.Timers {
		out = append(out, labelled{&t.Branch, fmt.Sprintf("%s: after %s%s", st.Name, t.Written(), guard(&t.Branch))})
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteCoverage prints a coverage report: per flow the share of states and branches
// reached, then each one missed as file:line:col.
func WriteCoverage(w io.Writer, rs []FlowCoverage) {
	for _, r := range rs {
		fmt.Fprintf(w, "coverage: %s (%s): states %d/%d (%.1f%%), branches %d/%d (%.1f%%)\n",
			r.Flow, r.File, r.Reached, r.States, r.StatePercent(), r.Taken, r.Branches, r.BranchPercent())
		for _, m := range r.Missing {
			fmt.Fprintf(w, "  %s:%d:%d: %s\n", r.File, m.Pos.Line, m.Pos.Col, m.What)
		}
	}
}
