package engine

import (
	"fmt"
	"strings"
)

// ReferenceMarkdown renders the generated part of the flow reference (docs/flows.md)
// from the spec: keys, actions and their parameters, event types, helper functions
// and diagnostic codes. A test keeps the document and the spec identical.
func ReferenceMarkdown() string {
	var b strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	object := func(o Object) {
		fmt.Fprintf(&b, "#### `%s`\n\n%s\n\n| key | type | required | meaning |\n|---|---|---|---|\n", o.Name, o.Doc)
		for _, f := range o.Fields {
			req := ""
			if f.Required {
				req = "yes"
			}
			doc := f.Doc
			if len(f.Enum) > 0 {
				doc += " One of: " + strings.Join(f.Enum, ", ") + "."
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, req, cell(doc))
		}
		b.WriteString("\n")
	}
	b.WriteString("### Keys\n\n")
	for _, o := range []Object{FlowSpec, StartSpec, StateSpec, BranchSpec, TimerSpec} {
		object(o)
	}
	b.WriteString("### Actions\n\n")
	b.WriteString("An action is a mapping with one key, the action's name. Actions marked *local* are applied by the\n" +
		"interpreter in the same step; the others are written to the outbox and their result comes back as\n" +
		"`action.done` or `action.failed`. A scalar value stands for the action's shorthand parameter.\n\n")
	for _, a := range Actions {
		kind := "outbox"
		if a.Local {
			kind = "local"
		}
		fmt.Fprintf(&b, "#### `%s` (%s)\n\n%s", a.Name, kind, a.Doc)
		if a.Shorthand != "" {
			fmt.Fprintf(&b, " Shorthand: `%s: \"…\"` sets `%s`.", a.Name, a.Shorthand)
		}
		b.WriteString("\n\n| parameter | type | required | meaning |\n|---|---|---|---|\n")
		for _, p := range a.Params {
			req := ""
			if p.Required {
				req = "yes"
			}
			doc := p.Doc
			if len(p.Enum) > 0 {
				doc += " One of: " + strings.Join(p.Enum, ", ") + "."
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Name, p.Type, req, cell(doc))
		}
		b.WriteString("\n")
	}
	b.WriteString("### Event types\n\n| type | meaning |\n|---|---|\n")
	for _, e := range EventTypes {
		fmt.Fprintf(&b, "| `%s` | %s |\n", e.Name, cell(e.Doc))
	}
	b.WriteString("\nOther `okdesk.*` and `telegram.*` types are accepted with a warning; any `onec.<event>` is accepted.\n\n")
	b.WriteString("### Helper functions\n\nBesides expr-lang's builtins (`len`, `trim`, `lower`, `upper`, `split`, `join`, `hasPrefix`,\n" +
		"`duration`, `string`, `int`, …) and operators (`in`, `matches`, `contains`, `??`):\n\n| function | meaning |\n|---|---|\n")
	for _, h := range Helpers {
		fmt.Fprintf(&b, "| `%s` | %s |\n", h.Signature, cell(h.Doc))
	}
	b.WriteString("\n### Diagnostic codes\n\n| code | severity | meaning | hint |\n|---|---|---|---|\n")
	for _, c := range Codes {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, c.Severity, cell(c.Summary), cell(c.Hint))
	}
	return b.String()
}
