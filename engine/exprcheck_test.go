package engine

import (
	"strings"
	"testing"
)

// helperCalls calls each helper with a misspelled field (event.txt) as one of its
// arguments; the others are valid.
var helperCalls = map[string]string{
	"phone":       "phone(event.txt)",
	"is_phone":    "is_phone(event.txt)",
	"letters":     "letters(event.txt)",
	"digits":      "digits(event.txt)",
	"squash":      "squash(event.txt)",
	"truncate":    "truncate(event.txt, 10)",
	"match":       `match(event.txt, "^[0-9]+$")`,
	"find":        `find(event.txt, "[0-9]+")`,
	"parse_time":  "parse_time(event.txt)",
	"is_time":     "is_time(event.txt)",
	"in_zone":     `in_zone(event.txt, "Europe/Moscow")`,
	"format_time": `format_time(event.txt, "15:04")`,
	"hours_since": "hours_since(event.txt, now)",
}

// TestHelperArgumentsAreChecked compiles every helper with a misspelled argument,
// in each place an expression can stand: a guard, start.when, a set expression, a
// template, and nested in another helper. Each must be a load-time unknown-name
// diagnostic at the argument, never a flow that fails at run time.
func TestHelperArgumentsAreChecked(t *testing.T) {
	for _, h := range Helpers {
		if _, ok := helperCalls[h.Name]; !ok {
			t.Errorf("helper %s has no case in helperCalls", h.Name)
		}
	}
	places := []struct {
		name string
		flow func(call string) string
	}{
		{"guard", func(c string) string {
			return flowWith("", "        - when: "+yamlQuote(c+" != nil")+"\n          goto: done\n")
		}},
		{"start.when", func(c string) string {
			return flowWith("  when: "+yamlQuote(c+" != nil")+"\n", "        - goto: done\n")
		}},
		{"set", func(c string) string {
			return flowWith("", "        - set: { x: "+yamlQuote(c)+" }\n          goto: done\n")
		}},
		{"template", func(c string) string {
			return flowWith("", "        - send: "+yamlQuote("Ответ: ${"+c+"}")+"\n          goto: done\n")
		}},
		{"nested", func(c string) string {
			return flowWith("", "        - when: "+yamlQuote("string("+c+") != \"\"")+"\n          goto: done\n")
		}},
	}
	for name, call := range helperCalls {
		for _, p := range places {
			t.Run(name+"/"+p.name, func(t *testing.T) {
				src := p.flow(call)
				fs, diags := testLoader.Compile([]File{{Name: "h.yaml", Data: []byte(src)}})
				if fs != nil {
					t.Fatalf("flow with %s compiled:\n%s", call, src)
				}
				var found bool
				for _, d := range diags {
					if d.Code == CodeUnknownName && d.Message == `event has no field "txt"` && d.Hint == `did you mean "text"?` {
						found = true
					}
					if strings.Contains(d.Message, "event.Event") || strings.Contains(d.Message, "engine.") {
						t.Errorf("message names a Go type: %s", d)
					}
				}
				if !found {
					t.Errorf("no unknown-name for event.txt in %s; got:\n%s", call, formatDiags(diags))
				}
			})
		}
	}
}

func flowWith(start, branch string) string {
	return "flow: h\nstart:\n  on: waba.message\n" + start + "initial: ask\nvars: { x: \"\" }\nstates:\n  ask:\n    on:\n      waba.message:\n" +
		branch + "  done:\n    final: true\n"
}

// TestNameMessages checks the wording of name problems: the operator's names for
// things, never Go's, and a did-you-mean where one is close.
func TestNameMessages(t *testing.T) {
	tests := []struct {
		expr, code, msg, hint string
	}{
		{"dialog.phnoe", CodeUnknownName, `dialog has no field "phnoe"`, `did you mean "phone"?`},
		{"event.contact.nmae", CodeUnknownName, `event.contact has no field "nmae"`, `did you mean "name"?`},
		{"sqush(event.text)", CodeUnknownName, "unknown function sqush", `did you mean "squash"?`},
		{"letters(sqush(event.text))", CodeUnknownName, "unknown function sqush", `did you mean "squash"?`},
		{"text", CodeUnknownName, "unknown name text", "did you mean event.text?"},
		{"now.Hur()", CodeUnknownName, `now has no method "Hur"`, `did you mean "Hour"?`},
		{"in_zone(now, \"UTC\").Hoor()", CodeUnknownName, `a time has no method "Hoor"`, `did you mean "Hour"?`},
		{"env.APP_SECRET", CodeUnknownName, "env.APP_SECRET is always empty: flows see only FLOW_* variables", "name the variable FLOW_APP_SECRET in the environment and read env.FLOW_APP_SECRET"},
		{"vars.nmae", CodeUnknownVar, "unknown variable vars.nmae", "did you mean vars.name?"},
		{"let n = event.text; n + vars.name", "", "", ""},
		{"event.data.anything.goes", "", "", ""},
		{"letters(1)", CodeExprType, "cannot use int as argument (type string) to call letters", ""},
		{"dialog.keys + 1", CodeExprType, "invalid operation: + (mismatched types list of strings and int)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, errs := compileExpr(tt.expr, false, &exprScope{declared: map[string]bool{"name": true}, names: []string{"name"}})
			if tt.code == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected problems: %+v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1: %+v", len(errs), errs)
			}
			e := errs[0]
			if e.code != tt.code || e.message != tt.msg || (tt.hint != "" && e.hint != tt.hint) {
				t.Errorf("got %s %q (hint %q), want %s %q (hint %q)", e.code, e.message, e.hint, tt.code, tt.msg, tt.hint)
			}
			if e.end < e.offset {
				t.Errorf("range %d..%d is reversed", e.offset, e.end)
			}
		})
	}
}

func TestOperatorWords(t *testing.T) {
	for in, want := range map[string]string{
		"type engine.DialogEnv has no field phnoe":                     `dialog has no field "phnoe"`,
		"type event.Event has no field txt (1:7)":                      `event has no field "txt"`,
		"cannot use map[string]interface {} as argument (type string)": "cannot use map as argument (type string)",
		`unexpected token Operator("*")`:                               `unexpected "*"`,
		`unexpected token Identifier("foo")`:                           "unexpected name foo",
	} {
		if got := operatorWords(in); got != want {
			t.Errorf("operatorWords(%q) = %q, want %q", in, got, want)
		}
	}
}
