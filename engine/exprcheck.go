package engine

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/parser"
)

// The name pass: every identifier, field and function of an expression is checked
// against the environment, the helpers and the flow's variables, after (and
// independently of) expr's type checker, and reported in the operator's words with
// a did-you-mean.

var envType = reflect.TypeOf(Env{})

// exprName is the name expr gives a struct field: its `expr` tag, else its Go name.
func exprName(f reflect.StructField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("expr"), ","); tag != "" {
		return tag
	}
	return f.Name
}

// fieldsOf lists the names an expression may write after a dot on a value of type
// t (fields by expr name, then exported methods), or nil when t has no fixed set
// (maps, any).
func fieldsOf(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if f, ok := fieldCache.Load(t); ok {
		return f.([]string)
	}
	var out []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && f.Tag.Get("expr") != "-" {
			out = append(out, exprName(f))
		}
	}
	for i := range t.NumMethod() {
		out = append(out, t.Method(i).Name)
	}
	fieldCache.Store(t, out)
	return out
}

var fieldCache sync.Map // reflect.Type → []string: the few types expressions see

// memberType is the type of name on a value of type t: a field's type, a method's
// function type, a map's element type; nil when unknown or absent.
func memberType(t reflect.Type, name string) (reflect.Type, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil, true
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && exprName(f) == name {
				return f.Type, true
			}
		}
		if m, ok := t.MethodByName(name); ok {
			return m.Type, true
		}
		if m, ok := reflect.PointerTo(t).MethodByName(name); ok {
			return m.Type, true
		}
		return nil, false
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return nil, true
		}
		return t.Elem(), true
	}
	return nil, true
}

// typeWords names a Go type the way the flow reference does.
var typeWords = map[string]string{
	"event.Event":             "event",
	"event.Contact":           "event.contact",
	"engine.DialogEnv":        "dialog",
	"engine.Env":              "the expression environment",
	"time.Time":               "time",
	"time.Duration":           "duration",
	"*time.Location":          "time zone",
	"map[string]interface {}": "map",
	"map[string]any":          "map",
	"[]interface {}":          "list",
	"[]any":                   "list",
	"[]string":                "list of strings",
	"interface {}":            "any",
	"float64":                 "float",
	"int64":                   "int",
}

var goTypeRe = func() *regexp.Regexp {
	keys := make([]string, 0, len(typeWords))
	for k := range typeWords {
		keys = append(keys, regexp.QuoteMeta(k))
	}
	// Longest first, so map[string]interface {} wins over interface {}.
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	return regexp.MustCompile(strings.Join(keys, "|"))
}()

// tokenRe matches expr's names of tokens in parse errors: Bracket(")").
var tokenRe = regexp.MustCompile(`unexpected token (\w+)\((".*?")\)`)

var typeXHasNoFieldRe = regexp.MustCompile(`^type (\S+) has no (field|method) (\S+)$`)

// operatorWords rewrites a message of expr's parser or checker without Go type
// names: `type engine.DialogEnv has no field phnoe` → `dialog has no field "phnoe"`.
func operatorWords(m string) string {
	m = strings.TrimSpace(m)
	if i := strings.Index(m, " (1:"); i > 0 && strings.HasSuffix(m, ")") && !strings.Contains(m[i+1:], "\n") {
		m = m[:i] // expr appends (line:col) of the expression itself
	}
	m = tokenRe.ReplaceAllStringFunc(m, func(t string) string {
		sm := tokenRe.FindStringSubmatch(t)
		switch sm[1] {
		case "Identifier":
			return "unexpected name " + strings.Trim(sm[2], `"`)
		case "String":
			return "unexpected text " + sm[2]
		case "Number":
			return "unexpected number " + strings.Trim(sm[2], `"`)
		}
		return "unexpected " + sm[2]
	})
	if sm := typeXHasNoFieldRe.FindStringSubmatch(m); sm != nil {
		return fmt.Sprintf("%s has no %s %q", goTypeRe.ReplaceAllStringFunc(sm[1], func(s string) string { return typeWords[s] }), sm[2], sm[3])
	}
	return goTypeRe.ReplaceAllStringFunc(m, func(s string) string { return typeWords[s] })
}

// nameCheck walks one expression tree.
type nameCheck struct {
	cfg   *conf.Config
	scope *exprScope
	lets  map[string]bool
	// callees are the identifiers called as functions: checked as such.
	callees map[*ast.IdentifierNode]bool
	errs    []exprError
}

func checkNames(tree *parser.Tree, cfg *conf.Config, scope *exprScope) []exprError {
	nc := &nameCheck{cfg: cfg, scope: scope, lets: map[string]bool{}, callees: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&tree.Node, collector{nc})
	ast.Walk(&tree.Node, nc)
	sort.SliceStable(nc.errs, func(i, j int) bool { return nc.errs[i].offset < nc.errs[j].offset })
	return nc.errs
}

// collector gathers the names `let` declares (they count as known) and the
// identifiers that are called.
type collector struct{ nc *nameCheck }

func (c collector) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.VariableDeclaratorNode:
		c.nc.lets[x.Name] = true
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			c.nc.callees[id] = true
		}
	}
}

func (nc *nameCheck) add(n ast.Node, code, msg, hint string) {
	loc := n.Location()
	for _, e := range nc.errs {
		if e.offset == loc.From && e.message == msg {
			return
		}
	}
	nc.errs = append(nc.errs, exprError{code: code, offset: loc.From, end: loc.To, message: msg, hint: hint})
}

// Visit checks identifiers and member accesses; ast.Walk visits children before
// their parent, so an unknown name deep in a chain is reported once, where it is.
func (nc *nameCheck) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		nc.identifier(x, nc.callees[x])
	case *ast.MemberNode:
		nc.member(x)
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && !nc.lets[id.Value] {
			nc.literals(id.Value, x.Arguments)
		}
	case *ast.BinaryNode:
		if x.Operator == "matches" {
			nc.regex(x.Right)
		}
	}
}

// literals checks the literal arguments a helper would fail on at run time: a
// regular expression that does not compile, a time zone that does not exist.
func (nc *nameCheck) literals(fn string, args []ast.Node) {
	switch {
	case (fn == "match" || fn == "find") && len(args) == 2:
		nc.regex(args[1])
	case (fn == "in_zone" || fn == "parse_time") && len(args) == 2:
		if s, ok := args[1].(*ast.StringNode); ok {
			if _, err := loadZone(s.Value); err != nil {
				nc.add(s, CodeUnknownTimezone, err.Error(), zoneHint(s.Value))
			}
		}
	}
}

// regex checks a literal regular expression.
func (nc *nameCheck) regex(n ast.Node) {
	s, ok := n.(*ast.StringNode)
	if !ok {
		return
	}
	if _, err := regexp.Compile(s.Value); err != nil {
		msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		nc.add(s, CodeBadRegex, fmt.Sprintf("the regular expression %q does not compile: %s", s.Value, msg),
			"regular expressions use RE2 syntax; in YAML and expr strings a backslash is written twice: \\\\d")
	}
}

func (nc *nameCheck) known(name string) bool {
	if nc.lets[name] || name == "$env" {
		return true
	}
	if fieldNamed(envType, name) {
		return true
	}
	if nc.cfg.Functions[name] != nil || nc.cfg.Builtins[name] != nil {
		return true
	}
	return false
}

func fieldNamed(t reflect.Type, name string) bool {
	for _, f := range fieldsOf(t) {
		if f == name {
			return true
		}
	}
	return false
}

func (nc *nameCheck) functions() []string {
	out := make([]string, 0, len(nc.cfg.Functions)+len(nc.cfg.Builtins))
	for name := range nc.cfg.Functions {
		out = append(out, name)
	}
	for name := range nc.cfg.Builtins {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func (nc *nameCheck) identifier(id *ast.IdentifierNode, call bool) {
	name := id.Value
	if nc.known(name) {
		if call && fieldNamed(envType, name) && nc.cfg.Functions[name] == nil && nc.cfg.Builtins[name] == nil {
			nc.add(id, CodeUnknownName, fmt.Sprintf("%s is not a function", name), "the helpers are listed in the flow reference")
		}
		return
	}
	if call {
		hint := didYouMeanHint(name, nc.functions())
		if hint == "" {
			hint = "the helpers and expr-lang's functions are listed in the flow reference"
		}
		nc.add(id, CodeUnknownName, fmt.Sprintf("unknown function %s", name), hint)
		return
	}
	// A bare name is often a field written without its object: text → event.text.
	cands := fieldsOf(envType)
	for _, obj := range []string{"event", "dialog"} {
		t, _ := memberType(envType, obj)
		for _, f := range fieldsOf(t) {
			cands = append(cands, obj+"."+f)
		}
	}
	if nc.scope != nil {
		for _, v := range nc.scope.names {
			cands = append(cands, "vars."+v)
		}
	}
	hint := ""
	for _, c := range cands {
		if _, field, ok := strings.Cut(c, "."); ok && field == name {
			hint = fmt.Sprintf("did you mean %s?", c)
			break
		}
	}
	if hint == "" {
		if s := DidYouMean(name, cands); s != "" {
			hint = fmt.Sprintf("did you mean %s?", s)
		} else {
			hint = "an expression starts from event, vars, dialog, now or env"
		}
	}
	nc.add(id, CodeUnknownName, fmt.Sprintf("unknown name %s", name), hint)
}

// member checks `base.name` where the base's type is known.
func (nc *nameCheck) member(m *ast.MemberNode) {
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	if id, ok := m.Node.(*ast.IdentifierNode); ok && !nc.lets[id.Value] {
		switch id.Value {
		case "vars":
			nc.variable(prop)
			return
		case "env":
			if !strings.HasPrefix(prop.Value, FlowEnvPrefix) {
				nc.add(prop, CodeUnknownName, fmt.Sprintf("env.%s is always empty: flows see only %s* variables", prop.Value, FlowEnvPrefix),
					fmt.Sprintf("name the variable %s%s in the environment and read env.%s%s", FlowEnvPrefix, prop.Value, FlowEnvPrefix, prop.Value))
			}
			return
		}
	}
	base := nc.typeOf(m.Node)
	names := fieldsOf(base)
	if names == nil {
		return
	}
	if _, found := memberType(base, prop.Value); found {
		return
	}
	what := describe(m.Node, base)
	kind := "field"
	if m.Method {
		kind = "method"
	}
	hint := didYouMeanHint(prop.Value, names)
	if hint == "" {
		hint = fmt.Sprintf("%s has: %s", what, strings.Join(names, ", "))
	}
	nc.add(prop, CodeUnknownName, fmt.Sprintf("%s has no %s %q", what, kind, prop.Value), hint)
}

func (nc *nameCheck) variable(prop *ast.StringNode) {
	if nc.scope == nil || nc.scope.declared[prop.Value] {
		return
	}
	hint := "declare it under `vars` with a default value"
	if s := DidYouMean(prop.Value, nc.scope.names); s != "" {
		hint = fmt.Sprintf("did you mean vars.%s?", s)
	}
	nc.add(prop, CodeUnknownVar, fmt.Sprintf("unknown variable vars.%s", prop.Value), hint)
}

var anyType = reflect.TypeOf((*any)(nil)).Elem()

// typeOf resolves the type of a chain of fields from the environment itself (the
// checker leaves the arguments of an unknown function untyped), else takes the
// checker's.
func (nc *nameCheck) typeOf(n ast.Node) reflect.Type {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		if nc.lets[x.Value] {
			break
		}
		if fieldNamed(envType, x.Value) {
			t, _ := memberType(envType, x.Value)
			return t
		}
		return nil
	case *ast.MemberNode:
		if p, ok := x.Property.(*ast.StringNode); ok {
			if bt := nc.typeOf(x.Node); bt != nil {
				t, _ := memberType(bt, p.Value)
				return t
			}
			return nil
		}
	case *ast.ChainNode:
		return nc.typeOf(x.Node)
	}
	if t := n.Type(); t != nil && t != anyType {
		if t.Kind() == reflect.Func && t.NumOut() > 0 {
			return nil
		}
		return t
	}
	return nil
}

// describe names the value a member is read from: its path when it is one
// (event.contact), else its type (time).
func describe(n ast.Node, t reflect.Type) string {
	var path []string
	for cur := n; ; {
		switch x := cur.(type) {
		case *ast.IdentifierNode:
			path = append(path, x.Value)
			for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
				path[i], path[j] = path[j], path[i]
			}
			return strings.Join(path, ".")
		case *ast.MemberNode:
			p, ok := x.Property.(*ast.StringNode)
			if !ok {
				return operatorWords(t.String())
			}
			path = append(path, p.Value)
			cur = x.Node
		case *ast.ChainNode:
			cur = x.Node
		default:
			return "a " + operatorWords(t.String())
		}
	}
}
