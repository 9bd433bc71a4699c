package engine

import (
	"fmt"
	"io"
	"strings"
)

// Edge is one transition of the flow's state diagram: a branch with a goto, an
// always-branch or a timer.
type Edge struct {
	From, To string
	// Label is the event type (or "always", "after 48h") with the guard or the
	// branch's number in brackets.
	Label string
	// Pos is the branch's place in the flow file: the history's guard lines carry it.
	Pos Pos
}

// Edges returns the flow's transitions in file order: what `fixit graph` draws.
func (f *Flow) Edges() []Edge {
	var out []Edge
	for _, name := range f.StateNames {
		st := f.States[name]
		for _, t := range st.OnOrder {
			for i, b := range st.On[t] {
				if b.Goto == "" {
					continue
				}
				label := t
				if b.WhenSrc != "" {
					label += " [" + b.WhenSrc + "]"
				} else if len(st.On[t]) > 1 {
					label += fmt.Sprintf(" [else #%d]", i+1)
				}
				out = append(out, Edge{name, b.Goto, label, b.Pos})
			}
		}
		for _, b := range st.Always {
			if b.Goto != "" {
				label := "always"
				if b.WhenSrc != "" {
					label += " [" + b.WhenSrc + "]"
				}
				out = append(out, Edge{name, b.Goto, label, b.Pos})
			}
		}
		for _, t := range st.Timers {
			if t.Goto != "" {
				out = append(out, Edge{name, t.Goto, "after " + t.Written(), t.Pos})
			}
		}
	}
	return out
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// WriteMermaid writes the flow's state diagram as a Mermaid stateDiagram-v2.
func (f *Flow) WriteMermaid(w io.Writer) error {
	esc := func(s string) string {
		s = oneLine(s)
		return strings.NewReplacer(`"`, "#quot;", ":", "#colon;", ";", "#59;").Replace(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %s\n---\nstateDiagram-v2\n", f.Name)
	fmt.Fprintf(&b, "    [*] --> %s : %s\n", f.Initial, esc(strings.Join(f.StartOn, ", ")))
	for _, e := range f.Edges() {
		fmt.Fprintf(&b, "    %s --> %s : %s\n", e.From, e.To, esc(e.Label))
	}
	for _, name := range f.StateNames {
		st := f.States[name]
		if st.Final {
			fmt.Fprintf(&b, "    %s --> [*] : %s\n", name, st.FinalStatus)
		}
		if st.Description != "" {
			fmt.Fprintf(&b, "    note right of %s : %s\n", name, esc(st.Description))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDot writes the flow's state diagram in Graphviz dot.
func (f *Flow) WriteDot(w io.Writer) error {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace
	q := func(s string) string { return `"` + esc(oneLine(s)) + `"` }
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n", q(f.Name))
	fmt.Fprintf(&b, "    __start [shape=point];\n    __start -> %s [label=%s];\n", q(f.Initial), q(strings.Join(f.StartOn, ", ")))
	for _, name := range f.StateNames {
		if st := f.States[name]; st.Final {
			// \n in a label is Graphviz's line break: written after escaping.
			label := `"` + esc(oneLine(name)) + `\n(` + esc(string(st.FinalStatus)) + `)"`
			fmt.Fprintf(&b, "    %s [shape=doublecircle, label=%s];\n", q(name), label)
		}
	}
	for _, e := range f.Edges() {
		fmt.Fprintf(&b, "    %s -> %s [label=%s];\n", q(e.From), q(e.To), q(e.Label))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
