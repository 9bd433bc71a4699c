package engine

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/fixit-exchange/fixit/engine/event"
)

// Env is the environment every guard, `set` expression and template is compiled
// against and evaluated in.
type Env struct {
	Event  event.Event    `expr:"event"`
	Vars   map[string]any `expr:"vars"`
	Dialog DialogEnv      `expr:"dialog"`
	Now    time.Time      `expr:"now"`
	// Env holds the deployment's FLOW_* environment variables (see FlowEnv).
	// A missing variable is nil, so `env.FLOW_X ?? "default"` works.
	Env map[string]any `expr:"env"`
}

// FlowEnvPrefix marks the environment variables flows may read as env.NAME.
const FlowEnvPrefix = "FLOW_"

// FlowEnv picks the FLOW_* variables out of an environment (os.Environ()). Only
// these reach expressions, so a flow can never print a secret such as APP_SECRET.
// A variable set to the empty string counts as unset.
func FlowEnv(environ []string) map[string]any {
	out := map[string]any{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && v != "" && strings.HasPrefix(k, FlowEnvPrefix) {
			out[k] = v
		}
	}
	return out
}

// DialogEnv is what expressions see of the dialog.
type DialogEnv struct {
	ID      string `expr:"id"`
	Flow    string `expr:"flow"`
	State   string `expr:"state"`
	Status  string `expr:"status"`
	Channel string `expr:"channel"`
	Contact string `expr:"contact"`
	Phone   string `expr:"phone"`
	// BusinessNumber is the WhatsApp business number (phone_number_id) the
	// customer wrote to; "" for other channels.
	BusinessNumber string    `expr:"business_number"`
	Keys           []string  `expr:"keys"`
	StartedAt      time.Time `expr:"started_at"`
	EnteredAt      time.Time `expr:"entered_at"`
}

// Helper describes one helper function available to expressions.
type Helper struct {
	Name      string
	Signature string
	Doc       string
	option    expr.Option
}

func str1(f func(string) any) func(...any) (any, error) {
	return func(p ...any) (any, error) { return f(p[0].(string)), nil }
}

var regexCache sync.Map // pattern → *regexp.Regexp (patterns come from flow files: bounded)

func cachedRegexp(p string) (*regexp.Regexp, error) {
	if r, ok := regexCache.Load(p); ok {
		return r.(*regexp.Regexp), nil
	}
	r, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("bad regular expression %q: %w", p, err)
	}
	regexCache.Store(p, r)
	return r, nil
}

// Helpers is the list of helper functions, with their types: a wrong call is a
// load-time diagnostic. expr-lang's own builtins (len, trim, lower, upper, split,
// join, hasPrefix, duration, date, …) are available too.
var Helpers = []Helper{
	{Name: "phone", Signature: "phone(string) string", Doc: "E.164 digits of a phone number in any format (\"+7 916 123-45-67\" → \"79161234567\"); \"\" when it is not a phone.",
		option: expr.Function("phone", str1(func(s string) any { return event.NormalizePhone(s) }), new(func(string) string))},
	{Name: "is_phone", Signature: "is_phone(string) bool", Doc: "Whether the text holds a phone number.",
		option: expr.Function("is_phone", str1(func(s string) any { return event.NormalizePhone(s) != "" }), new(func(string) bool))},
	{Name: "letters", Signature: "letters(string) int", Doc: "Number of letters (any alphabet) in the text.",
		option: expr.Function("letters", str1(func(s string) any {
			n := 0
			for _, r := range s {
				if unicode.IsLetter(r) {
					n++
				}
			}
			return n
		}), new(func(string) int))},
	{Name: "digits", Signature: "digits(string) string", Doc: "Only the digits of the text.",
		option: expr.Function("digits", str1(func(s string) any {
			return strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, s)
		}), new(func(string) string))},
	{Name: "squash", Signature: "squash(string) string", Doc: "Trims the text and collapses runs of white space into one space.",
		option: expr.Function("squash", str1(func(s string) any { return strings.Join(strings.Fields(s), " ") }), new(func(string) string))},
	{Name: "truncate", Signature: "truncate(string, int) string", Doc: "The first n characters of the text, with … when it was cut.",
		option: expr.Function("truncate", func(p ...any) (any, error) {
			s, n := p[0].(string), p[1].(int)
			r := []rune(s)
			if n < 1 || len(r) <= n {
				if n < 1 {
					return "", nil
				}
				return s, nil
			}
			return string(r[:n-1]) + "…", nil
		}, new(func(string, int) string))},
	{Name: "match", Signature: "match(string, string) bool", Doc: "Whether the text matches the regular expression (RE2 syntax).",
		option: expr.Function("match", func(p ...any) (any, error) {
			r, err := cachedRegexp(p[1].(string))
			if err != nil {
				return nil, err
			}
			return r.MatchString(p[0].(string)), nil
		}, new(func(string, string) bool))},
	{Name: "find", Signature: "find(string, string) string", Doc: "The first match of the regular expression in the text (its first group when it has one), or \"\".",
		option: expr.Function("find", func(p ...any) (any, error) {
			r, err := cachedRegexp(p[1].(string))
			if err != nil {
				return nil, err
			}
			m := r.FindStringSubmatch(p[0].(string))
			switch {
			case m == nil:
				return "", nil
			case len(m) > 1:
				return m[1], nil
			}
			return m[0], nil
		}, new(func(string, string) string))},
	{Name: "parse_time", Signature: "parse_time(string[, zone]) time.Time", Doc: "Parses a time: RFC 3339 (2026-05-10T14:30:00+03:00), or without a zone (2026-05-10T14:30:00, 2026-05-10 14:30, 2026-05-10), read in the zone given, else the flow's `timezone`. A text that is not a time is an error of the step (check with is_time first), never the zero time.",
		option: expr.Function("parse_time", func(p ...any) (any, error) {
			zone := "UTC"
			if len(p) > 1 {
				zone = p[1].(string)
			}
			return parseTime(p[0].(string), zone)
		}, new(func(string) time.Time), new(func(string, string) time.Time))},
	{Name: "is_time", Signature: "is_time(string) bool", Doc: "Whether parse_time can read the text.",
		option: expr.Function("is_time", str1(func(s string) any {
			_, err := parseTime(s, "UTC")
			return err == nil
		}), new(func(string) bool))},
	{Name: "in_zone", Signature: "in_zone(time.Time, string) time.Time", Doc: "The time in an IANA zone, e.g. in_zone(now, \"Europe/Moscow\").Hour().",
		option: expr.Function("in_zone", func(p ...any) (any, error) {
			loc, err := loadZone(p[1].(string))
			if err != nil {
				return nil, err
			}
			return p[0].(time.Time).In(loc), nil
		}, new(func(time.Time, string) time.Time))},
	{Name: "format_time", Signature: "format_time(time.Time, string) string", Doc: "Formats a time with a Go layout, e.g. format_time(now, \"02.01.2006 15:04\").",
		option: expr.Function("format_time", func(p ...any) (any, error) {
			return p[0].(time.Time).Format(p[1].(string)), nil
		}, new(func(time.Time, string) string))},
	{Name: "hours_since", Signature: "hours_since(time.Time, time.Time) float", Doc: "Hours from the first time to the second: hours_since(dialog.started_at, now).",
		option: expr.Function("hours_since", func(p ...any) (any, error) {
			return p[1].(time.Time).Sub(p[0].(time.Time)).Hours(), nil
		}, new(func(time.Time, time.Time) float64))},
}

var compileOptions = func() []expr.Option {
	opts := []expr.Option{expr.Env(Env{})}
	for _, h := range Helpers {
		opts = append(opts, h.option)
	}
	return opts
}()

// configs holds compiler configurations built from compileOptions. Building one
// (the helpers' signatures, Env's fields by reflection) cost more than compiling a
// typical guard, and a configuration caches type information as it is used, so
// each is kept and reused; one compile uses one at a time (the cache is not safe
// for concurrent use).
var configs = sync.Pool{New: func() any {
	c := conf.CreateNew()
	for _, op := range compileOptions {
		op(c)
	}
	for name := range c.Disabled {
		delete(c.Builtins, name)
	}
	c.Check()
	return c
}}

// exprError is a compile problem inside one expression, at a rune offset of its source.
type exprError struct {
	code    string
	offset  int // rune offset inside the expression source
	end     int // rune offset just after the problem (0: unknown)
	message string
	hint    string
}

// exprScope is what one flow's expressions may name beyond the environment: its
// declared variables.
type exprScope struct {
	declared map[string]bool
	names    []string
	// zone is where parse_time reads times written without one: a call with one
	// argument gets it as its second.
	zone string
}

// compileExpr compiles src; asBool requires a bool result. It parses, type-checks,
// then checks every name in a pass of its own: expr's checker stops looking inside a
// typed function's arguments once it has typed the call (and reports only its first
// problem), so `letters(event.txt)` would otherwise compile and fail on every run.
func compileExpr(src string, asBool bool, scope *exprScope) (*vm.Program, []exprError) {
	if strings.TrimSpace(src) == "" {
		return nil, []exprError{{code: CodeExprSyntax, message: "empty expression", hint: "write an expression, e.g. event.text != \"\""}}
	}
	c := configs.Get().(*conf.Config)
	defer func() {
		c.Expect, c.ExpectAny = reflect.Invalid, false
		configs.Put(c)
	}()
	if asBool {
		expr.AsBool()(c)
	}
	tree, err := parser.ParseWithConfig(src, c)
	if err != nil {
		return nil, []exprError{syntaxError(src, err)}
	}
	if scope != nil && scope.zone != "" {
		ast.Walk(&tree.Node, zoneArg(scope.zone))
	}
	_, checkErr := checker.Check(tree, c)
	errs := checkNames(tree, c, scope)
	if checkErr != nil {
		e := typeError(src, checkErr, asBool)
		if len(errs) == 0 || !isNameMessage(checkErr) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if c.Optimize {
		if err := optimizer.Optimize(&tree.Node, c); err != nil {
			return nil, []exprError{typeError(src, err, asBool)}
		}
	}
	prog, err := compiler.Compile(tree, c)
	if err != nil {
		return nil, []exprError{typeError(src, err, asBool)}
	}
	return prog, nil
}

// zoneArg gives parse_time(s) the flow's zone: parse_time(s, "Europe/Moscow").
type zoneArg string

func (z zoneArg) Visit(n *ast.Node) {
	if c, ok := (*n).(*ast.CallNode); ok && len(c.Arguments) == 1 {
		if id, ok := c.Callee.(*ast.IdentifierNode); ok && id.Value == "parse_time" {
			c.Arguments = append(c.Arguments, &ast.StringNode{Value: string(z)})
		}
	}
}

// syntaxError turns a parse error into an expr-syntax (or, for the rare parse
// error about names, expr-type) problem at its place.
func syntaxError(src string, err error) exprError {
	e := exprError{code: CodeExprSyntax, message: operatorWords(err.Error()), hint: codeIndex[CodeExprSyntax].Hint}
	var fe *file.Error
	if errors.As(err, &fe) {
		e.offset, e.end = fe.From, fe.To
		e.message = operatorWords(strings.TrimSpace(fe.Message))
		if strings.HasPrefix(fe.Message, "unexpected token EOF") {
			// expr places EOF on the last character; the end is just after
			// the last token, where more was expected.
			e.offset = utf8.RuneCountInString(strings.TrimRightFunc(src, unicode.IsSpace))
			e.end = e.offset
			e.message = "the expression ends too early"
		}
		if !isSyntaxMessage(fe.Message) {
			e.code, e.hint = CodeExprType, codeIndex[CodeExprType].Hint
		}
		if e.message == `unexpected "="` {
			e.hint = "to compare, write == (a single = is not an operator)"
		}
	}
	return e
}

// typeError turns a checker (or compiler) error into an expr-type problem, in the
// operator's words.
func typeError(src string, err error, asBool bool) exprError {
	e := exprError{code: CodeExprType, message: operatorWords(err.Error()), hint: codeIndex[CodeExprType].Hint}
	var fe *file.Error
	if errors.As(err, &fe) {
		e.offset, e.end = fe.From, fe.To
		e.message = operatorWords(strings.TrimSpace(fe.Message))
	}
	if got, ok := strings.CutPrefix(e.message, "expected bool, but got "); ok && asBool {
		e.offset, e.end = 0, utf8.RuneCountInString(src)
		e.message = fmt.Sprintf("a guard must be true or false, but this expression gives %s", got)
		e.hint = "compare it, e.g. `event.text != \"\"` or `vars.tries > 2`"
	}
	return e
}

// isNameMessage reports whether a checker error is about an unknown name, which the
// name pass reports better.
func isNameMessage(err error) bool {
	m := err.Error()
	for _, s := range []string{"unknown name", "has no field", "has no method", "cannot fetch", "is not callable", "error parsing regexp"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func isSyntaxMessage(m string) bool {
	for _, s := range []string{"unexpected token", "unexpected end", "unterminated", "unrecognized character", "invalid char", "literal not terminated", "invalid number", "invalid escape"} {
		if strings.HasPrefix(m, s) {
			return true
		}
	}
	return false
}

// zonelessLayouts are the forms of a time written without a zone that
// parse_time reads (1C writes 2026-05-10T00:00:00).
var zonelessLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// parseTime reads an RFC 3339 time, or a time without a zone in zone.
func parseTime(s, zone string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	loc, err := loadZone(zone)
	if err != nil {
		return time.Time{}, err
	}
	for _, layout := range zonelessLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse_time: %q is not a time (write 2026-05-10T14:30:00+03:00, 2026-05-10T14:30:00 or 2026-05-10)", s)
}

// Stringify renders a value produced by an expression for a template: integral
// floats without decimals, nil as "", times in RFC 3339.
func Stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return Stringify(float64(x))
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.Format(time.RFC3339)
	case time.Duration:
		return x.String()
	}
	return fmt.Sprint(v)
}
