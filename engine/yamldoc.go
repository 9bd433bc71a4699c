package engine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// YAMLDoc is the YAML front end that flow files and scenario files share. It
// parses a file into yaml.v3 nodes, which keep every position, and turns every
// problem it meets into a Diagnostic with its range and in the operator's words:
// the file's encoding, tabs and invisible characters, YAML syntax, duplicate keys,
// unknown keys with a did-you-mean, wrong kinds of values, durations, and the
// expansion of aliases. The loader and the scenario parser add their own
// diagnostics through it, so both read alike.
type YAMLDoc struct {
	src   *source
	diags Diagnostics
	// expanded counts the nodes visited through aliases (see Expand).
	expanded int
	tooBig   bool
}

// Limits of the front end.
const (
	// MaxAliasDepth is how many aliases of aliases Resolve follows.
	MaxAliasDepth = 16
	// MaxExpandedNodes bounds the nodes one file may expand to through aliases
	// ("billion laughs": a few lines of nested aliases make billions of values).
	MaxExpandedNodes = 100000
	// MaxDuration is the longest duration a file may write.
	MaxDuration = 3650 * 24 * time.Hour
)

// ParseYAML reads one file. It returns the document's root node (aliases
// resolved), or nil when the file is empty or not YAML; the problems are in the
// YAMLDoc's Diagnostics either way.
func ParseYAML(name string, data []byte) (*YAMLDoc, *yaml.Node) {
	d := &YAMLDoc{src: newSource(name, data)}
	if !d.checkEncoding() {
		return d, nil
	}
	invisible := d.checkInvisible()
	var doc yaml.Node
	err := yaml.Unmarshal(data, &doc)
	switch {
	case invisible:
		// What follows from the invisible characters (a syntax error, odd keys,
		// missing states) would only hide the cause.
		return d, nil
	case err != nil:
		d.yamlError(err)
		return d, nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return d, nil
	}
	d.rejoinSplit(&doc)
	return d, Resolve(doc.Content[0])
}

// rejoinSplit finds expressions cut by a comma inside `{ … }` or `[ … ]`: in
// `{ n: truncate(event.text, 20) }` YAML ends the value at the comma and makes
// `20)` a key of its own. Each is reported once, and the pieces are joined again
// so that what follows is not reported as well.
func (d *YAMLDoc) rejoinSplit(n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Style&yaml.FlowStyle != 0 && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		// In a mapping a piece is a key with no value; in a list, the next item.
		step, first := 1, 0
		if n.Kind == yaml.MappingNode {
			step, first = 2, 1
		}
		for i := first; i+step < len(n.Content); i += step {
			v := n.Content[i]
			cut := v.Value
			joined := false
			for open(v) > 0 && i+step < len(n.Content) && isPlain(n.Content[i+1]) && (step == 1 || IsNull(n.Content[i+2])) {
				d.join(v, n.Content[i+1])
				n.Content = append(n.Content[:i+1], n.Content[i+1+step:]...)
				joined = true
			}
			if joined {
				d.Error(v, CodeSplitValue, fmt.Sprintf("inside { … } or [ … ] a comma ends a value: the expression is cut after %q", cut),
					fmt.Sprintf("quote the expression: '%s'", strings.ReplaceAll(v.Value, "'", "''")))
			}
		}
	}
	// The tree has each node once: an alias refers to its anchor without
	// holding it in Content.
	for _, c := range n.Content {
		d.rejoinSplit(c)
	}
}

func isPlain(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
}

// open counts the brackets a plain scalar leaves open.
func open(n *yaml.Node) int {
	if !isPlain(n) || n.Tag != "!!str" {
		return 0
	}
	depth := 0
	for _, r := range n.Value {
		switch r {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
	}
	return depth
}

// join appends the piece cut off by a comma to v, as the file has it.
func (d *YAMLDoc) join(v, piece *yaml.Node) {
	from, to := d.src.offset(nodePos(v)), d.src.offset(nodePos(piece))
	joined := v.Value + ", " + piece.Value
	if from >= 0 && to > from {
		if end := to + len(piece.Value); end <= len(d.src.data) && string(d.src.data[to:end]) == piece.Value {
			joined = string(d.src.data[from:end])
		}
	}
	v.Value = joined
}

// Diagnostics returns the problems found so far, in file order.
func (d *YAMLDoc) Diagnostics() Diagnostics {
	d.diags.Sort()
	return d.diags
}

// Errors counts the errors reported so far.
func (d *YAMLDoc) Errors() int {
	n := 0
	for _, x := range d.diags {
		if x.Severity == SevError {
			n++
		}
	}
	return n
}

// Name is the file's name as diagnostics show it.
func (d *YAMLDoc) Name() string { return d.src.name }

// Error reports a problem with node n, underlining all of it.
func (d *YAMLDoc) Error(n *yaml.Node, code, msg, hint string) {
	start, end := d.src.nodeRange(n)
	d.AddRange(start, end, SevError, code, msg, hint)
}

// Warn reports a warning about node n.
func (d *YAMLDoc) Warn(n *yaml.Node, code, msg, hint string) {
	start, end := d.src.nodeRange(n)
	d.AddRange(start, end, SevWarning, code, msg, hint)
}

// ErrorAt reports a problem at p, underlining the token there.
func (d *YAMLDoc) ErrorAt(p Pos, code, msg, hint string) {
	p = d.src.clamp(p)
	d.AddRange(p, d.src.tokenEnd(p), SevError, code, msg, hint)
}

// AddRange reports a problem from start to end (exclusive). An empty hint takes
// the code's default hint.
func (d *YAMLDoc) AddRange(start, end Pos, sev Severity, code, msg, hint string) {
	start = d.src.clamp(start)
	end = d.src.clamp(end)
	if end.Line < start.Line || end.Line == start.Line && end.Col <= start.Col {
		end = d.src.clamp(d.src.tokenEnd(start))
	}
	if hint == "" {
		hint = codeIndex[code].Hint
	}
	d.diags = append(d.diags, Diagnostic{File: d.src.name, Line: start.Line, Col: start.Col, EndLine: end.Line, EndCol: end.Col,
		Severity: sev, Code: code, Message: msg, Hint: hint})
}

// ScalarRange is the range of runes from..to of scalar n's value in the file.
func (d *YAMLDoc) ScalarRange(n *yaml.Node, from, to int) (Pos, Pos) {
	return d.src.scalarPos(n, from), d.src.scalarPos(n, to)
}

// Resolve follows aliases (at most MaxAliasDepth of them) to the node they name.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < MaxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is absent or an explicit null (`~`, `null`, nothing).
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// KindName names a node's kind for a message: "a mapping", "a string", …
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!timestamp":
			return "a timestamp"
		}
		return "a scalar"
	}
	return "an alias"
}

// Pair is one key and value of a mapping, aliases resolved.
type Pair struct {
	Key, Val *yaml.Node
}

// Pairs returns the entries of mapping n in file order, reporting duplicate keys
// and keys that are not scalars. Merge keys (`<<: *anchor`) are expanded: the
// merged mapping's entries come in where the merge key stands, and a key written
// in n itself wins over a merged one.
func (d *YAMLDoc) Pairs(n *yaml.Node) []Pair {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	// own holds the keys written in n itself, needed only when something is
	// merged into it.
	var own map[string]bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		if Resolve(n.Content[i]).Tag == "!!merge" {
			own = map[string]bool{}
			break
		}
	}
	if own != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := Resolve(n.Content[i]); k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
				own[k.Value] = true
			}
		}
	}
	out := make([]Pair, 0, len(n.Content)/2)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.Error(k, CodeWrongType, fmt.Sprintf("a key must be a plain name, not %s", KindName(k)), "write the key as a name followed by a colon")
			continue
		}
		if k.Tag == "!!merge" {
			for _, mp := range d.merged(v) {
				if !own[mp.Key.Value] && seen[mp.Key.Value] == nil {
					seen[mp.Key.Value] = mp.Key
					out = append(out, mp)
				}
			}
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.Error(k, CodeDuplicateKey, fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, prev.Line), "")
			continue
		}
		seen[k.Value] = k
		out = append(out, Pair{k, v})
	}
	return out
}

// merged reads the value of a merge key: a mapping or a list of mappings (earlier
// ones win).
func (d *YAMLDoc) merged(v *yaml.Node) []Pair {
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, c := range v.Content {
			maps = append(maps, Resolve(c))
		}
	}
	var out []Pair
	seen := map[string]bool{}
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			d.Error(m, CodeWrongType, fmt.Sprintf("<< merges a mapping, not %s", KindName(m)), "write `<<: *anchor` where the anchor names a mapping")
			continue
		}
		for _, p := range d.Pairs(m) {
			if !seen[p.Key.Value] {
				seen[p.Key.Value] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// Expect checks n's kind and reports wrong-type, naming what n is.
func (d *YAMLDoc) Expect(n *yaml.Node, kind yaml.Kind, what string) bool {
	if n.Kind == kind {
		return true
	}
	want := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a scalar"}[kind]
	d.Error(n, CodeWrongType, fmt.Sprintf("%s must be %s, not %s", what, want, KindName(n)), "")
	return false
}

// Elsewhere says, for keys that belong to another part of the file, which part
// ("a branch", "a state"): a key written one level too high or too low gets that
// as its hint instead of a misleading did-you-mean.
type Elsewhere map[string]string

// Fields checks mapping n against spec, reporting unknown and missing keys, and
// returns the values by key. Keys for which extra holds (e.g. inline actions)
// come back in order as the second result; extraNames are offered to the
// did-you-mean of unknown keys along with the spec's.
func (d *YAMLDoc) Fields(n *yaml.Node, spec Object, extra func(string) bool, extraNames []string, elsewhere Elsewhere) (map[string]*yaml.Node, []Pair) {
	ps := d.Pairs(n)
	got := make(map[string]*yaml.Node, len(ps))
	var rest []Pair
	for _, p := range ps {
		if _, ok := spec.field(p.Key.Value); ok {
			got[p.Key.Value] = p.Val
			continue
		}
		if extra != nil && extra(p.Key.Value) {
			rest = append(rest, p)
			continue
		}
		d.UnknownKey(p.Key, spec, extraNames, elsewhere)
	}
	for _, f := range spec.Fields {
		if f.Required && got[f.Name] == nil {
			d.Error(n, CodeMissingKey, fmt.Sprintf("%s has no %q", spec.Name, f.Name), fmt.Sprintf("add `%s:` — %s", f.Name, f.Doc))
		}
	}
	return got, rest
}

// UnknownKey reports key k, which spec does not define.
func (d *YAMLDoc) UnknownKey(k *yaml.Node, spec Object, extraNames []string, elsewhere Elsewhere) {
	names := spec.names()
	var hint string
	switch where := elsewhere[k.Value]; {
	case where != "":
		hint = fmt.Sprintf("%s belongs to %s, not to the %s: check its indentation", k.Value, where, spec.Name)
	default:
		if s := DidYouMean(k.Value, append(append([]string(nil), names...), extraNames...)); s != "" {
			hint = fmt.Sprintf("did you mean %q?", s)
		} else {
			hint = fmt.Sprintf("%s keys are: %s", spec.Name, strings.Join(names, ", "))
			if len(extraNames) > 0 {
				hint += "; and the actions: " + strings.Join(extraNames, ", ")
			}
		}
	}
	d.Error(k, CodeUnknownKey, fmt.Sprintf("unknown key %q in %s", k.Value, spec.Name), hint)
}

// Bool reads a true/false scalar; ok is false (and reported) for anything else.
func (d *YAMLDoc) Bool(n *yaml.Node, what string) (v, ok bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		hint := ""
		switch strings.ToLower(n.Value) {
		case "yes", "on", "y":
			hint = fmt.Sprintf("YAML 1.2 reads %s as a string: write true", n.Value)
		case "no", "off", "n":
			hint = fmt.Sprintf("YAML 1.2 reads %s as a string: write false", n.Value)
		}
		d.Error(n, CodeWrongType, fmt.Sprintf("%s must be true or false, not %s", what, KindName(n)), hint)
		return false, false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", true
}

// Duration reads a duration scalar (see ParseDuration); what names it in a
// message ("" when the value speaks for itself, as a timer's key does).
func (d *YAMLDoc) Duration(n *yaml.Node, what string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		if what == "" {
			what = "a duration"
		}
		d.Error(n, CodeBadDuration, fmt.Sprintf("%s must be a duration like 24h, not %s", what, KindName(n)), "")
		return 0, false
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		msg := err.Error()
		if what != "" {
			msg = what + ": " + msg
		}
		d.Error(n, CodeBadDuration, msg, "")
		return 0, false
	}
	return v, true
}

var durationRe = regexp.MustCompile(`^(-?)(?:([0-9]+)d)?((?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))*)$`)

// ParseDuration reads the durations flow and scenario files write: Go's (90s,
// 15m, 24h, 1h30m) plus whole days in front (2d, 1d12h). A duration must be
// positive and at most MaxDuration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	m := durationRe.FindStringSubmatch(s)
	if s == "" || m == nil || m[2] == "" && m[3] == "" {
		return 0, fmt.Errorf("bad duration %q: write it like 90s, 15m, 24h, 2d or 1h30m", s)
	}
	if m[1] == "-" {
		return 0, fmt.Errorf("duration %s is negative: a duration must be longer than zero", s)
	}
	tooLong := fmt.Errorf("duration %s is too long: at most %dd (ten years)", s, int(MaxDuration/(24*time.Hour)))
	var total time.Duration
	if m[2] != "" {
		days, err := strconv.Atoi(m[2])
		if err != nil || time.Duration(days) > MaxDuration/(24*time.Hour) {
			return 0, tooLong
		}
		total = time.Duration(days) * 24 * time.Hour
	}
	if m[3] != "" {
		rest, err := time.ParseDuration(m[3])
		if err != nil || rest > MaxDuration {
			return 0, tooLong
		}
		total += rest
	}
	switch {
	case total <= 0:
		return 0, fmt.Errorf("duration %s is zero: a duration must be longer than zero", s)
	case total > MaxDuration:
		return 0, tooLong
	}
	return total, nil
}

// Expand counts one node visited while expanding a value through aliases; it
// reports (once) and returns false when the file has expanded to more than
// MaxExpandedNodes nodes. at is the value being expanded.
func (d *YAMLDoc) Expand(at *yaml.Node) bool {
	d.expanded++
	if d.expanded <= MaxExpandedNodes {
		return true
	}
	if !d.tooBig {
		d.tooBig = true
		d.Error(at, CodeBadValue, fmt.Sprintf("values expand to more than %d nodes (aliases nested in aliases?)", MaxExpandedNodes), "write the value out instead of nesting aliases")
	}
	return false
}

// Decode turns a value into plain data (map[string]any, []any, string, float64
// or int, bool, nil), counting its nodes against the expansion budget. Scalars
// keep their YAML type; timestamps stay strings.
func (d *YAMLDoc) Decode(n *yaml.Node, what string) (any, bool) {
	return d.decode(n, n, what)
}

func (d *YAMLDoc) decode(n, root *yaml.Node, what string) (any, bool) {
	n = Resolve(n)
	if !d.Expand(root) {
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for _, p := range d.Pairs(n) {
			v, ok := d.decode(p.Val, root, what+"."+p.Key.Value)
			if !ok {
				return nil, false
			}
			out[p.Key.Value] = v
		}
		return out, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, ok := d.decode(c, root, what)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case yaml.ScalarNode:
		if n.Tag == "!!timestamp" || n.Tag == "!!str" {
			return n.Value, true
		}
		var v any
		if err := n.Decode(&v); err != nil {
			d.Error(n, CodeWrongType, fmt.Sprintf("%s: %v", what, err), "")
			return nil, false
		}
		return normalizeValue(v), true
	}
	d.Error(n, CodeWrongType, fmt.Sprintf("%s: aliases nested deeper than %d", what, MaxAliasDepth), "")
	return nil, false
}

// DidYouMean returns the candidate closest to s, or "" when none is close enough
// to be the name meant: within one edit (a transposition counts as one) for short
// names, two from five characters on, three from nine. Case is ignored; names
// longer than 64 characters are not compared.
func DidYouMean(s string, candidates []string) string {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > 64 {
		return ""
	}
	limit := 1
	switch {
	case n >= 9:
		limit = 3
	case n >= 5:
		limit = 2
	}
	best, bestD := "", limit+1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if c == s || utf8.RuneCountInString(c) > 64 {
			continue
		}
		dist := EditDistance(ls, strings.ToLower(c))
		if dist < bestD || dist == bestD && best != "" && c < best {
			best, bestD = c, dist
		}
	}
	return best
}
