package scenario

import (
	"fmt"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/sim"
)

// textMatch is an expected text: exact, or contained when written with a leading
// "~" ("=" forces an exact match of a text that starts with "~" or "=").
type textMatch struct {
	s        string
	contains bool
}

func parseTextMatch(s string) textMatch {
	switch {
	case strings.HasPrefix(s, "~"):
		return textMatch{s: s[1:], contains: true}
	case strings.HasPrefix(s, "="):
		return textMatch{s: s[1:]}
	}
	return textMatch{s: s}
}

func (m textMatch) match(got string) bool {
	if m.contains {
		return strings.Contains(got, m.s)
	}
	return got == m.s
}

func (m textMatch) String() string {
	if m.contains {
		return "~" + sim.Quote(m.s)
	}
	return sim.Quote(m.s)
}

// matchValue compares an expected value (from the scenario, JSON-shaped) with an
// actual one: strings exactly or with "~"; mappings as subsets; lists item by
// item; numbers by value; anything else by equality.
func matchValue(want, got any) bool {
	switch w := want.(type) {
	case string:
		tm := parseTextMatch(w)
		if tm.contains {
			return got != nil && tm.match(engine.Stringify(got))
		}
		g, ok := got.(string)
		return ok && g == tm.s
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, present := g[k]
			if !present && wv != nil {
				return false
			}
			if !matchValue(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matchValue(w[i], g[i]) {
				return false
			}
		}
		return true
	case nil:
		return got == nil
	}
	if wf, ok := sim.Number(want); ok {
		gf, ok := sim.Number(got)
		return ok && wf == gf
	}
	return fmt.Sprint(want) == fmt.Sprint(got) && fmt.Sprintf("%T", want) == fmt.Sprintf("%T", got)
}
