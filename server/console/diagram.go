package console

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine"
)

// Diagram is a flow's state diagram laid out for SVG: the states in layers from
// top to bottom (the initial state first, final states last), the transitions as
// curves between them. It is drawn from the same edges as `fixit graph`.
type Diagram struct {
	Flow          string
	Width, Height int
	Start         DiagramStart
	Nodes         []DiagramNode
	Edges         []DiagramEdge
}

// DiagramStart is the start marker and its arrow into the initial state.
type DiagramStart struct {
	X, Y  int
	Path  string
	Label string // the start event types
	Count int64  // dialogs started in the counted period
}

// DiagramNode is one state.
type DiagramNode struct {
	Name        string
	Description string
	X, Y, W, H  int // top-left corner and size
	Final       bool
	Initial     bool
	// Live counts the dialogs waiting in the state (active or with an operator).
	Live int64
}

// CX is the node's horizontal centre.
func (n DiagramNode) CX() int { return n.X + n.W/2 }

// DiagramEdge is one transition.
type DiagramEdge struct {
	engine.Edge
	Path           string // the SVG path's d attribute
	LabelX, LabelY int
	Short          string // the label drawn: the event type or timer, and the count
	Count          int64  // times the branch was taken in the counted period
	Back           bool   // it goes back up (a loop of the flow)
}

// Layout constants, in SVG user units (pixels at 100%).
const (
	nodeH       = 46
	nodeMinW    = 120
	charW       = 7.4 // average advance of the 13px sans-serif used for names
	layerGap    = 96
	nodeGap     = 44
	margin      = 24
	backReach   = 56 // how far a loop back swings out to the side
	selfReach   = 42
	parallelGap = 14
)

// Layout lays the flow out. live counts the dialogs waiting in each state; taken
// counts how often each branch (by its place in the file) was taken, and started
// how many dialogs the flow started, in the period the caller counted.
func Layout(f *engine.Flow, live map[string]int64, taken map[engine.Pos]int64, started int64) Diagram {
	edges := f.Edges()
	index := map[string]int{}
	for i, name := range f.StateNames {
		index[name] = i
	}
	n := len(f.StateNames)
	// Back edges: those a depth-first walk from the initial state finds going to a
	// state still on its path. Without them the graph has no cycles.
	out := make([][]int, n) // edge indexes by source
	for i, e := range edges {
		out[index[e.From]] = append(out[index[e.From]], i)
	}
	back := make([]bool, len(edges))
	color := make([]int, n) // 0 unseen, 1 on the path, 2 done
	var visit func(v int)
	visit = func(v int) {
		color[v] = 1
		for _, ei := range out[v] {
			w := index[edges[ei].To]
			switch color[w] {
			case 0:
				visit(w)
			case 1:
				back[ei] = true
			}
		}
		color[v] = 2
	}
	if init, ok := index[f.Initial]; ok {
		visit(init)
	}
	for v := range n {
		if color[v] == 0 {
			visit(v)
		}
	}
	// Layers: the longest path from a root over forward edges; final states go
	// to the bottom layer.
	layer := make([]int, n)
	for changed := true; changed; {
		changed = false
		for i, e := range edges {
			a, b := index[e.From], index[e.To]
			if back[i] || a == b {
				continue
			}
			if layer[b] < layer[a]+1 {
				layer[b], changed = layer[a]+1, true
			}
		}
	}
	bottom := 0
	for v, name := range f.StateNames {
		if !f.States[name].Final {
			bottom = max(bottom, layer[v])
		}
	}
	for v, name := range f.StateNames {
		if f.States[name].Final {
			layer[v] = bottom + 1
		}
	}
	layers := [][]int{}
	for v := range n {
		for len(layers) <= layer[v] {
			layers = append(layers, nil)
		}
		layers[layer[v]] = append(layers[layer[v]], v)
	}
	layers = slices.DeleteFunc(layers, func(l []int) bool { return len(l) == 0 })
	orderLayers(layers, edges, index, back)

	// Sizes and positions.
	w := make([]int, n)
	for v, name := range f.StateNames {
		w[v] = max(nodeMinW, int(float64(utf8.RuneCountInString(name))*charW)+28)
	}
	widest := 0
	for _, l := range layers {
		lw := -nodeGap
		for _, v := range l {
			lw += w[v] + nodeGap
		}
		widest = max(widest, lw)
	}
	d := Diagram{Flow: f.Name, Width: widest + 2*margin + backReach + selfReach}
	nodes := make([]DiagramNode, n)
	top := margin + 44 // room for the start marker
	for li, l := range layers {
		lw := -nodeGap
		for _, v := range l {
			lw += w[v] + nodeGap
		}
		x := margin + (widest-lw)/2
		for _, v := range l {
			name := f.StateNames[v]
			st := f.States[name]
			nodes[v] = DiagramNode{Name: name, Description: oneLine(st.Description), X: x, Y: top + li*(nodeH+layerGap),
				W: w[v], H: nodeH, Final: st.Final, Initial: name == f.Initial, Live: live[name]}
			x += w[v] + nodeGap
		}
	}
	d.Height = top + len(layers)*(nodeH+layerGap) - layerGap + margin
	d.Nodes = nodes
	if init, ok := index[f.Initial]; ok {
		in := nodes[init]
		d.Start = DiagramStart{X: in.CX(), Y: margin + 6, Label: strings.Join(f.StartOn, ", "), Count: started,
			Path: fmt.Sprintf("M%d %d L%d %d", in.CX(), margin+12, in.CX(), in.Y-2)}
	}

	// Edge ends: a node's outgoing forward edges leave from its bottom, spread by
	// where they go; incoming ones arrive on its top, spread by where they come from.
	outs := make([][]int, n)
	ins := make([][]int, n)
	for i, e := range edges {
		a, b := index[e.From], index[e.To]
		if back[i] || a == b {
			continue
		}
		outs[a] = append(outs[a], i)
		ins[b] = append(ins[b], i)
	}
	outX := map[int]int{}
	inX := map[int]int{}
	spread := func(list []int, node DiagramNode, other func(int) int, into map[int]int) {
		slices.SortStableFunc(list, func(x, y int) int { return other(x) - other(y) })
		for k, ei := range list {
			into[ei] = node.X + node.W*(k+1)/(len(list)+1)
		}
	}
	for v := range n {
		spread(outs[v], nodes[v], func(ei int) int { return nodes[index[edges[ei].To]].CX() }, outX)
		spread(ins[v], nodes[v], func(ei int) int { return nodes[index[edges[ei].From]].CX() }, inX)
	}
	sides := map[[2]int]int{} // loops and back edges drawn so far, by node pair
	for i, e := range edges {
		a, b := nodes[index[e.From]], nodes[index[e.To]]
		de := DiagramEdge{Edge: e, Count: taken[e.Pos], Back: back[i]}
		de.Short = shortLabel(e.Label)
		var p [4][2]float64
		switch {
		case index[e.From] == index[e.To]:
			k := sides[[2]int{index[e.From], index[e.To]}]
			sides[[2]int{index[e.From], index[e.To]}]++
			x, y := float64(a.X+a.W), float64(a.Y+a.H/2)
			r := float64(selfReach + k*parallelGap)
			p = [4][2]float64{{x, y - 10}, {x + r, y - 28}, {x + r, y + 28}, {x, y + 10}}
		case back[i] || b.Y <= a.Y:
			de.Back = true
			k := sides[[2]int{index[e.From], index[e.To]}]
			sides[[2]int{index[e.From], index[e.To]}]++
			x1, y1 := float64(a.X+a.W), float64(a.Y+a.H/2+6)
			x2, y2 := float64(b.X+b.W), float64(b.Y+b.H/2-6)
			r := float64(backReach + k*parallelGap)
			p = [4][2]float64{{x1, y1}, {max(x1, x2) + r, y1}, {max(x1, x2) + r, y2}, {x2, y2}}
		default:
			x1, y1 := float64(outX[i]), float64(a.Y+a.H)
			x2, y2 := float64(inX[i]), float64(b.Y-2)
			dy := (y2 - y1) / 2
			p = [4][2]float64{{x1, y1}, {x1, y1 + dy}, {x2, y2 - dy}, {x2, y2}}
		}
		de.Path = fmt.Sprintf("M%.0f %.0f C%.0f %.0f, %.0f %.0f, %.0f %.0f",
			p[0][0], p[0][1], p[1][0], p[1][1], p[2][0], p[2][1], p[3][0], p[3][1])
		// The curve's middle: B(½) = (P0 + 3·P1 + 3·P2 + P3) / 8.
		de.LabelX = int((p[0][0] + 3*p[1][0] + 3*p[2][0] + p[3][0]) / 8)
		de.LabelY = int((p[0][1] + 3*p[1][1] + 3*p[2][1] + p[3][1]) / 8)
		d.Edges = append(d.Edges, de)
	}
	return d
}

// orderLayers orders the states inside each layer to cross fewer edges: file order
// first, then a few sweeps that put each state at the mean position of its
// neighbours in the layer above (going down) or below (going up).
func orderLayers(layers [][]int, edges []engine.Edge, index map[string]int, back []bool) {
	pos := map[int]float64{}
	set := func() {
		for _, l := range layers {
			for k, v := range l {
				pos[v] = float64(k)
			}
		}
	}
	set()
	up := map[int][]int{}   // neighbours above, by state
	down := map[int][]int{} // neighbours below, by state
	for i, e := range edges {
		a, b := index[e.From], index[e.To]
		if back[i] || a == b {
			continue
		}
		up[b] = append(up[b], a)
		down[a] = append(down[a], b)
	}
	sweep := func(l []int, nb map[int][]int) {
		key := map[int]float64{}
		for _, v := range l {
			if len(nb[v]) == 0 {
				key[v] = pos[v]
				continue
			}
			sum := 0.0
			for _, u := range nb[v] {
				sum += pos[u]
			}
			key[v] = sum / float64(len(nb[v]))
		}
		slices.SortStableFunc(l, func(x, y int) int {
			switch {
			case key[x] < key[y]:
				return -1
			case key[x] > key[y]:
				return 1
			}
			return 0
		})
		for k, v := range l {
			pos[v] = float64(k)
		}
	}
	for range 3 {
		for i := 1; i < len(layers); i++ {
			sweep(layers[i], up)
		}
		for i := len(layers) - 2; i >= 0; i-- {
			sweep(layers[i], down)
		}
	}
}

// shortLabel is what an edge shows on the drawing: the event type or timer,
// without the guard (which the branch table and the edge's tooltip give).
func shortLabel(label string) string {
	s, _, _ := strings.Cut(label, " [")
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
