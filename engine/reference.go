package engine

import (
	"fmt"
	"strings"

	"github.com/fixit-exchange/fixit/connectors"
)

// ReferenceMarkdown renders the generated part of the flow reference (docs/flows.md)
// from the spec and the catalog: keys, actions and their parameters, the channels'
// limits, event types, helper functions and diagnostic codes. A test keeps the
// document and the spec identical.
func ReferenceMarkdown(c *Catalog) string {
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
	for _, a := range c.Actions() {
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
			if p.MaxLen > 0 {
				doc += fmt.Sprintf(" At most %d characters.", p.MaxLen)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Name, p.Type, req, cell(doc))
		}
		b.WriteString("\n")
	}
	limitsTable(&b, c.Channels())
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
	for _, code := range Codes {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", code.Name, code.Severity, cell(code.Summary), cell(code.Hint))
	}
	return b.String()
}

// limitRows name each limit of a channel as the reference shows it.
var limitRows = []struct {
	name string
	get  func(connectors.Limits) int
}{
	{"text (a message of text only)", func(l connectors.Limits) int { return l.Text }},
	{"text (a message with buttons or a list)", func(l connectors.Limits) int { return l.Body }},
	{"header", func(l connectors.Limits) int { return l.Header }},
	{"footer", func(l connectors.Limits) int { return l.Footer }},
	{"buttons in a message", func(l connectors.Limits) int { return l.Buttons }},
	{"button title", func(l connectors.Limits) int { return l.ButtonTitle }},
	{"button id", func(l connectors.Limits) int { return l.ButtonID }},
	{"button id (bytes)", func(l connectors.Limits) int { return l.ButtonIDBytes }},
	{"list button", func(l connectors.Limits) int { return l.ListButton }},
	{"list section title", func(l connectors.Limits) int { return l.SectionTitle }},
	{"rows in a list (all sections)", func(l connectors.Limits) int { return l.ListRows }},
	{"row title", func(l connectors.Limits) int { return l.RowTitle }},
	{"row description", func(l connectors.Limits) int { return l.RowDescription }},
	{"row id", func(l connectors.Limits) int { return l.RowID }},
	{"row id (bytes)", func(l connectors.Limits) int { return l.RowIDBytes }},
}

// limitsTable writes what each channel accepts in one message.
func limitsTable(b *strings.Builder, chans []connectors.Channel) {
	if len(chans) == 0 {
		return
	}
	b.WriteString("### Channel limits\n\nWhat each channel accepts in one message, in characters unless marked bytes (—: no limit).\n" +
		"A literal value over a limit is an error; a template whose literal part alone is over it is a warning, and at\n" +
		"send time the value is cut to the limit (ending with …) and a warning is logged.\n\n| limit |")
	for _, ch := range chans {
		fmt.Fprintf(b, " %s |", ch.Title)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(chans)) + "\n")
	for _, r := range limitRows {
		fmt.Fprintf(b, "| %s |", r.name)
		for _, ch := range chans {
			if v := r.get(ch.Limits); v > 0 {
				fmt.Fprintf(b, " %d |", v)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
