package sim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
		return "~" + quote(m.s)
	}
	return quote(m.s)
}

// matchValue compares an expected value (from the scenario, JSON-shaped) with an
// actual one: strings exactly or with "~"; mappings as subsets; lists item by
// item; numbers by value; anything else by equality.
func matchValue(want, got any) bool {
	switch w := want.(type) {
	case string:
		tm := parseTextMatch(w)
		if tm.contains {
			return got != nil && tm.match(str(got))
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
	if wf, ok := toFloat(want); ok {
		gf, ok := toFloat(got)
		return ok && wf == gf
	}
	return fmt.Sprint(want) == fmt.Sprint(got) && fmt.Sprintf("%T", want) == fmt.Sprintf("%T", got)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// show renders a value compactly and deterministically: JSON with sorted keys,
// strings quoted, and non-ASCII text left readable.
func show(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + show(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return quote(x)
	case nil:
		return "null"
	}
	if f, ok := toFloat(v); ok {
		b, _ := json.Marshal(f)
		return string(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// quote is strconv.Quote that keeps printable non-ASCII text (Cyrillic) as is.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
