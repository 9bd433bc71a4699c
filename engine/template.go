package engine

import (
	"strings"

	"github.com/expr-lang/expr/vm"
)

// tmplPart is a literal piece or an expression of a template string.
type tmplPart struct {
	lit  string
	src  string // expression source, when prog is set
	prog *vm.Program
}

// Template is a compiled string with ${expr} pieces.
type Template struct {
	parts []tmplPart
	// single is set when the template is exactly one ${expr}: its value keeps its type.
	single bool
}

// tmplSegment is one ${…} found by splitTemplate: its source and rune offset.
type tmplSegment struct {
	lit    string // literal text before the expression
	src    string
	offset int // rune offset of src in the template
	isExpr bool
}

// splitTemplate cuts s into literal and ${expr} segments. `$${` is a literal `${`.
// It returns the rune offset of an unclosed `${` (or -1).
func splitTemplate(s string) ([]tmplSegment, int) {
	var segs []tmplSegment
	var lit strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		if rs[i] == '$' && i+2 < len(rs) && rs[i+1] == '$' && rs[i+2] == '{' {
			lit.WriteString("${")
			i += 2
			continue
		}
		if rs[i] == '$' && i+1 < len(rs) && rs[i+1] == '{' {
			end := closingBrace(rs, i+2)
			if end < 0 {
				return nil, i
			}
			if lit.Len() > 0 {
				segs = append(segs, tmplSegment{lit: lit.String()})
				lit.Reset()
			}
			segs = append(segs, tmplSegment{src: string(rs[i+2 : end]), offset: i + 2, isExpr: true})
			i = end
			continue
		}
		lit.WriteRune(rs[i])
	}
	if lit.Len() > 0 {
		segs = append(segs, tmplSegment{lit: lit.String()})
	}
	return segs, -1
}

// closingBrace finds the `}` that closes an expression starting at i, skipping
// nested braces and string literals.
func closingBrace(rs []rune, i int) int {
	depth := 0
	var quote rune
	for ; i < len(rs); i++ {
		r := rs[i]
		if quote != 0 {
			if r == '\\' && quote != '`' {
				i++
			} else if r == quote {
				quote = 0
			}
			continue
		}
		switch r {
		case '"', '\'', '`':
			quote = r
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// HasTemplate reports whether s contains a ${…} expression.
func HasTemplate(s string) bool { return strings.Contains(s, "${") }

// literal returns the template's text when it has no expressions.
func (t *Template) literal() (string, bool) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog != nil {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}
