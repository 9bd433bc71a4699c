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
	layerGap    = 84
	nodeGap     = 40
	dummyW      = 22 // the width a long edge takes in a layer it passes through
	dummyGap    = 8
	margin      = 24
	backReach   = 48 // how far a loop back swings out to the side
	selfReach   = 42
	parallelGap = 14
)

// Layout lays the flow out. live counts the dialogs waiting in each state; taken
// counts how often each branch (by its place in the file) was taken, and started
// how many dialogs the flow started, in the period the caller counted.
//
// It is a small layered (Sugiyama-style) layout: back edges found by a
// depth-first walk are set aside; each state's layer is its longest path from a
// root (final states last); an edge that spans several layers passes through a
// point of its own in each layer between, so that it goes around the states
// there; a few sweeps order each layer by the mean position of its neighbours.
func Layout(f *engine.Flow, live map[string]int64, taken map[engine.Pos]int64, started int64) Diagram {
	edges := f.Edges()
	index := map[string]int{}
	for i, name := range f.StateNames {
		index[name] = i
	}
	n := len(f.StateNames)
	back := backEdges(f, edges, index)
	layer := layers(f, edges, index, back)

	// Items: the states, then a point per layer crossed by a long edge.
	type item struct {
		layer int
		w     int
		state bool
	}
	items := make([]item, n)
	for v, name := range f.StateNames {
		items[v] = item{layer: layer[v], w: max(nodeMinW, int(float64(utf8.RuneCountInString(name))*charW)+28), state: true}
	}
	hops := make([][]int, len(edges)) // the items a forward edge goes through, source to target
	var segs [][2]int                 // consecutive hops: the graph the ordering works on
	for i, e := range edges {
		a, b := index[e.From], index[e.To]
		if back[i] || a == b {
			continue
		}
		path := []int{a}
		for l := layer[a] + 1; l < layer[b]; l++ {
			items = append(items, item{layer: l, w: dummyW})
			path = append(path, len(items)-1)
		}
		path = append(path, b)
		hops[i] = path
		for k := 0; k+1 < len(path); k++ {
			segs = append(segs, [2]int{path[k], path[k+1]})
		}
	}
	maxLayer := 0
	for _, it := range items {
		maxLayer = max(maxLayer, it.layer)
	}
	byLayer := make([][]int, maxLayer+1)
	for v, it := range items {
		byLayer[it.layer] = append(byLayer[it.layer], v)
	}
	orderLayers(byLayer, segs)

	// Positions: each layer centred on the widest.
	gap := func(a, b int) int {
		if items[a].state && items[b].state {
			return nodeGap
		}
		return dummyGap
	}
	widthOf := func(l []int) int {
		w := 0
		for k, v := range l {
			if k > 0 {
				w += gap(l[k-1], v)
			}
			w += items[v].w
		}
		return w
	}
	widest := 0
	for _, l := range byLayer {
		widest = max(widest, widthOf(l))
	}
	x := make([]int, len(items))
	top := margin + 44 // room for the start marker
	yOf := func(l int) int { return top + l*(nodeH+layerGap) }
	for _, l := range byLayer {
		cur := margin + (widest-widthOf(l))/2
		for k, v := range l {
			if k > 0 {
				cur += gap(l[k-1], v)
			}
			x[v] = cur
			cur += items[v].w
		}
	}
	d := Diagram{Flow: f.Name, Width: widest + 2*margin + backReach + selfReach + 3*parallelGap,
		Height: yOf(maxLayer) + nodeH + margin}
	d.Nodes = make([]DiagramNode, n)
	for v, name := range f.StateNames {
		st := f.States[name]
		d.Nodes[v] = DiagramNode{Name: name, Description: oneLine(st.Description), X: x[v], Y: yOf(layer[v]),
			W: items[v].w, H: nodeH, Final: st.Final, Initial: name == f.Initial, Live: live[name]}
	}
	if init, ok := index[f.Initial]; ok {
		in := d.Nodes[init]
		d.Start = DiagramStart{X: in.CX(), Y: margin + 6, Label: strings.Join(f.StartOn, ", "), Count: started,
			Path: fmt.Sprintf("M%d %d L%d %d", in.CX(), margin+12, in.CX(), in.Y-2)}
	}

	// Edge ends: a state's outgoing edges leave from its bottom, spread by where
	// their first hop is; incoming ones arrive on its top, spread by where their
	// last hop comes from.
	centre := func(v int) int { return x[v] + items[v].w/2 }
	outX, inX := map[int]int{}, map[int]int{}
	outs, ins := make([][]int, n), make([][]int, n)
	for i, path := range hops {
		if path != nil {
			outs[path[0]] = append(outs[path[0]], i)
			ins[path[len(path)-1]] = append(ins[path[len(path)-1]], i)
		}
	}
	spread := func(list []int, v int, other func(int) int, into map[int]int) {
		slices.SortStableFunc(list, func(a, b int) int { return other(a) - other(b) })
		for k, ei := range list {
			into[ei] = x[v] + items[v].w*(k+1)/(len(list)+1)
		}
	}
	for v := range n {
		spread(outs[v], v, func(ei int) int { return centre(hops[ei][1]) }, outX)
		spread(ins[v], v, func(ei int) int { return centre(hops[ei][len(hops[ei])-2]) }, inX)
	}
	sides := map[[2]int]int{} // loops and back edges drawn so far, by state pair
	order := map[int]int{}    // outgoing edges labelled so far, by state
	for i, e := range edges {
		a, b := d.Nodes[index[e.From]], d.Nodes[index[e.To]]
		de := DiagramEdge{Edge: e, Count: taken[e.Pos], Back: back[i], Short: shortLabel(e.Label)}
		pair := [2]int{index[e.From], index[e.To]}
		var first cubic // the segment that carries the label
		switch {
		case hops[i] == nil && pair[0] == pair[1]:
			k := sides[pair]
			sides[pair]++
			x0, y0 := float64(a.X+a.W), float64(a.Y+a.H/2)
			r := float64(selfReach + k*parallelGap)
			first = cubic{{x0, y0 - 10}, {x0 + r, y0 - 28}, {x0 + r, y0 + 28}, {x0, y0 + 10}}
			de.Path = first.path()
		case hops[i] == nil:
			k := sides[pair]
			sides[pair]++
			x1, y1 := float64(a.X+a.W), float64(a.Y+a.H/2+6)
			x2, y2 := float64(b.X+b.W), float64(b.Y+b.H/2-6)
			r := float64(backReach + k*parallelGap)
			first = cubic{{x1, y1}, {max(x1, x2) + r, y1}, {max(x1, x2) + r, y2}, {x2, y2}}
			de.Path = first.path()
		default:
			// Through each layer it crosses, the edge runs straight down its point.
			pts := [][2]float64{{float64(outX[i]), float64(a.Y + a.H)}}
			for _, h := range hops[i][1 : len(hops[i])-1] {
				cx := float64(centre(h))
				pts = append(pts, [2]float64{cx, float64(yOf(items[h].layer))}, [2]float64{cx, float64(yOf(items[h].layer) + nodeH)})
			}
			pts = append(pts, [2]float64{float64(inX[i]), float64(b.Y - 2)})
			var sb strings.Builder
			fmt.Fprintf(&sb, "M%.0f %.0f", pts[0][0], pts[0][1])
			for k := 0; k+1 < len(pts); k += 2 {
				c := down(pts[k], pts[k+1])
				if k == 0 {
					first = c
				}
				fmt.Fprintf(&sb, " C%.0f %.0f, %.0f %.0f, %.0f %.0f", c[1][0], c[1][1], c[2][0], c[2][1], c[3][0], c[3][1])
				if k+2 < len(pts) {
					fmt.Fprintf(&sb, " L%.0f %.0f", pts[k+2][0], pts[k+2][1])
				}
			}
			de.Path = sb.String()
		}
		// Labels of one state's edges sit at staggered heights of their first
		// segment, in the gap below the state, so that neighbours do not cover
		// each other.
		t := 0.5
		if !de.Back {
			k := order[pair[0]]
			order[pair[0]]++
			t = []float64{0.3, 0.55, 0.8}[k%3]
		}
		lx, ly := first.at(t)
		de.LabelX, de.LabelY = int(lx), int(ly)+4
		d.Edges = append(d.Edges, de)
	}
	return d
}

// cubic is a cubic Bézier curve: start, two control points, end.
type cubic [4][2]float64

// down is the curve from p to q leaving and arriving vertically.
func down(p, q [2]float64) cubic {
	dy := (q[1] - p[1]) / 2
	return cubic{p, {p[0], p[1] + dy}, {q[0], q[1] - dy}, q}
}

func (c cubic) path() string {
	return fmt.Sprintf("M%.0f %.0f C%.0f %.0f, %.0f %.0f, %.0f %.0f",
		c[0][0], c[0][1], c[1][0], c[1][1], c[2][0], c[2][1], c[3][0], c[3][1])
}

// at is the point of the curve at t in [0, 1].
func (c cubic) at(t float64) (float64, float64) {
	u := 1 - t
	a, b, cc, d := u*u*u, 3*u*u*t, 3*u*t*t, t*t*t
	return a*c[0][0] + b*c[1][0] + cc*c[2][0] + d*c[3][0], a*c[0][1] + b*c[1][1] + cc*c[2][1] + d*c[3][1]
}

// backEdges marks the edges a depth-first walk from the initial state (then from
// any state not reached) finds going back to a state on its path: without them
// the graph has no cycles.
func backEdges(f *engine.Flow, edges []engine.Edge, index map[string]int) []bool {
	n := len(f.StateNames)
	out := make([][]int, n)
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
	return back
}

// layers gives each state its layer: the longest path from a root over the
// forward edges, with final states in a last layer of their own; empty layers
// are closed up.
func layers(f *engine.Flow, edges []engine.Edge, index map[string]int, back []bool) []int {
	n := len(f.StateNames)
	layer := make([]int, n)
	for changed := true; changed; {
		changed = false
		for i, e := range edges {
			a, b := index[e.From], index[e.To]
			if !back[i] && a != b && layer[b] < layer[a]+1 {
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
	used := map[int]bool{}
	for _, l := range layer {
		used[l] = true
	}
	shift := make([]int, slices.Max(append(layer, 0))+1)
	gaps := 0
	for l := range shift {
		if !used[l] {
			gaps++
		}
		shift[l] = gaps
	}
	for v := range layer {
		layer[v] -= shift[layer[v]]
	}
	return layer
}

// orderLayers orders the items inside each layer to cross fewer edges: their
// first order, then a few sweeps that put each at the mean position of its
// neighbours in the layer above (going down) or below (going up).
func orderLayers(layers [][]int, segs [][2]int) {
	pos := map[int]float64{}
	for _, l := range layers {
		for k, v := range l {
			pos[v] = float64(k)
		}
	}
	up := map[int][]int{}   // neighbours above, by item
	down := map[int][]int{} // neighbours below, by item
	for _, s := range segs {
		up[s[1]] = append(up[s[1]], s[0])
		down[s[0]] = append(down[s[0]], s[1])
	}
	sweep := func(l []int, nb map[int][]int) {
		key := map[int]float64{}
		for _, v := range l {
			key[v] = pos[v]
			if len(nb[v]) > 0 {
				sum := 0.0
				for _, u := range nb[v] {
					sum += pos[u]
				}
				key[v] = sum / float64(len(nb[v]))
			}
		}
		slices.SortStableFunc(l, func(a, b int) int {
			switch {
			case key[a] < key[b]:
				return -1
			case key[a] > key[b]:
				return 1
			}
			return 0
		})
		for k, v := range l {
			pos[v] = float64(k)
		}
	}
	for range 4 {
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
