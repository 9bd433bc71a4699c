package engine

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Pos is a 1-based line and column (in characters) in a flow file.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// source is a flow file's bytes with its line offsets, to map positions inside
// scalars back to the file.
type source struct {
	name  string
	data  []byte
	lines []int // byte offset of each line start
}

// newSource indexes the lines of data. Lines end where yaml.v3 ends them — at
// LF, CRLF, a lone CR, NEL, LS and PS — so that the parser's line numbers and
// ours agree.
func newSource(name string, data []byte) *source {
	s := &source{name: name, data: data, lines: []int{0}}
	for i := 0; i < len(data); {
		w := lineBreakLen(data[i:])
		if w > 0 {
			i += w
			s.lines = append(s.lines, i)
			continue
		}
		i++
	}
	return s
}

// lineBreakLen is the length of the line break at the start of b, or 0.
func lineBreakLen(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\r' && len(b) > 1 && b[1] == '\n':
		return 2
	case b[0] == '\r' || b[0] == '\n':
		return 1
	case b[0] == 0xC2 && len(b) > 1 && b[1] == 0x85: // NEL
		return 2
	case b[0] == 0xE2 && len(b) > 2 && b[1] == 0x80 && (b[2] == 0xA8 || b[2] == 0xA9): // LS, PS
		return 3
	}
	return 0
}

// offset turns a position into a byte offset (-1 when outside the file).
func (s *source) offset(p Pos) int {
	if p.Line < 1 || p.Line > len(s.lines) {
		return -1
	}
	o := s.lines[p.Line-1]
	for c := 1; c < p.Col; c++ {
		if o >= len(s.data) || lineBreakLen(s.data[o:]) > 0 {
			return -1
		}
		_, n := utf8.DecodeRune(s.data[o:])
		o += n
	}
	return o
}

// posOf turns a byte offset back into a position.
func (s *source) posOf(off int) Pos {
	line := 1
	lo, hi := 0, len(s.lines)-1
	for lo <= hi {
		m := (lo + hi) / 2
		if s.lines[m] <= off {
			line = m + 1
			lo = m + 1
		} else {
			hi = m - 1
		}
	}
	col := utf8.RuneCount(s.data[s.lines[line-1]:off]) + 1
	return Pos{Line: line, Col: col}
}

// clamp keeps p inside the file: yaml.v3 places the empty value of a document
// that ends right after `---` or `key:` on the line after the last one.
func (s *source) clamp(p Pos) Pos {
	if p.Line < 1 {
		p.Line = 1
	}
	if p.Col < 1 {
		p.Col = 1
	}
	if p.Line > len(s.lines) {
		p.Line = len(s.lines)
		p.Col = utf8.RuneCountInString(s.lineText(p.Line)) + 1
	}
	if n := utf8.RuneCountInString(s.lineText(p.Line)) + 1; p.Col > n {
		p.Col = n
	}
	return p
}

func nodePos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{1, 1}
	}
	line, col := n.Line, n.Column
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	return Pos{line, col}
}

// scalarPos returns the file position of the rune at index idx of the scalar's
// value. It aligns the value with the raw source, understanding quotes, escapes,
// block indentation and line folding; when alignment fails it falls back to the
// scalar's own position, so a diagnostic is always positioned.
func (s *source) scalarPos(n *yaml.Node, idx int) Pos {
	start := nodePos(n)
	off := s.offset(start)
	if off < 0 || idx <= 0 && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		return start
	}
	data := s.data
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// Content begins on the line after the block indicator.
		for off < len(data) && data[off] != '\n' {
			off++
		}
		off++
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		off++ // opening quote
	}
	val := []rune(n.Value)
	if idx > len(val) {
		idx = len(val)
	}
	dq := n.Style&yaml.DoubleQuotedStyle != 0
	sq := n.Style&yaml.SingleQuotedStyle != 0
	for i := 0; ; i++ {
		// Skip source characters that are not part of the value: indentation,
		// folded line breaks, escape sequences that do not produce val[i].
		for off < len(data) {
			r, w := utf8.DecodeRune(data[off:])
			if i < len(val) && r == val[i] && !(dq && r == '\\') {
				if sq && r == '\'' && off+1 < len(data) && data[off+1] == '\'' {
					w = 2
				}
				if i == idx {
					return s.posOf(off)
				}
				off += w
				break
			}
			if dq && r == '\\' {
				dec, ew := decodeEscape(data[off:])
				if i < len(val) && dec == val[i] && ew > 0 {
					if i == idx {
						return s.posOf(off)
					}
					off += ew
					break
				}
				if ew > 0 {
					off += ew
					continue
				}
			}
			if i < len(val) && (val[i] == ' ' || val[i] == '\n') && (r == '\n' || r == '\r') {
				// A folded line break stands for this space or newline.
				if i == idx {
					return s.posOf(off)
				}
				off += w
				for off < len(data) && (data[off] == ' ' || data[off] == '\t') {
					off++
				}
				break
			}
			if i >= len(val) {
				return s.posOf(off)
			}
			if r == '\n' || r == ' ' || r == '\t' || r == '\r' || (dq && r == '"') || (sq && r == '\'') {
				off += w
				continue
			}
			return start // lost alignment
		}
		if off >= len(data) {
			if i >= idx {
				return s.posOf(len(data))
			}
			return start
		}
		if i >= len(val) {
			return start
		}
	}
}

// decodeEscape decodes one YAML double-quoted escape at the start of b, returning
// the rune it stands for (-1 for a line continuation) and its width in bytes.
func decodeEscape(b []byte) (rune, int) {
	if len(b) < 2 {
		return -1, 0
	}
	simple := map[byte]rune{'0': 0, 'a': 7, 'b': 8, 't': 9, '\t': 9, 'n': 10, 'v': 11, 'f': 12, 'r': 13,
		'e': 27, ' ': ' ', '"': '"', '/': '/', '\\': '\\', 'N': 0x85, '_': 0xA0, 'L': 0x2028, 'P': 0x2029}
	if r, ok := simple[b[1]]; ok {
		return r, 2
	}
	hexLen := map[byte]int{'x': 2, 'u': 4, 'U': 8}[b[1]]
	if hexLen > 0 && len(b) >= 2+hexLen {
		v, err := strconv.ParseUint(string(b[2:2+hexLen]), 16, 32)
		if err == nil {
			return rune(v), 2 + hexLen
		}
	}
	if b[1] == '\n' {
		return -1, 2
	}
	return -1, 0
}

// yamlErrorPos finds where a YAML syntax error really is. yaml.v3 only reports a
// line, and that line is the start of the enclosing construct (sometimes off by
// one, sometimes the end of the file), never the offending token. So the loader
// finds the first line at which a prefix of the file fails with the very same
// error — the line where the parser met the problem — and then the column of the
// offending character on it.
func (s *source) yamlErrorPos(err error, msg string, parse func([]byte) error) Pos {
	n := len(s.lines)
	if n > 0 && s.lines[n-1] == len(s.data) {
		n-- // a final newline does not start a line of its own
	}
	if n == 0 {
		return Pos{1, 1}
	}
	full := err.Error()
	// Smallest prefix (in lines) that fails the same way. Once the offending
	// token is inside the prefix the error no longer changes, so a binary search
	// finds the line.
	lo, hi := 1, n
	for lo < hi {
		mid := (lo + hi) / 2
		if e := parse(s.data[:s.lineEnd(mid)]); e != nil && e.Error() == full {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	line := lo
	if strings.Contains(msg, "end of stream") {
		// An unclosed quote: the parser reached the end of the file inside a
		// quoted scalar. yaml.v3 names the line where the scalar starts (unless it
		// is the first line); point at the quote that opens it.
		if l := yamlLineOf(full); l >= 1 && l < line {
			line = l
		} else if line == n {
			line = 1
		}
		for l := line; l >= 1; l-- {
			if c := s.unclosedQuote(l); c > 0 {
				return Pos{l, c}
			}
		}
		return Pos{line, s.firstNonBlank(line)}
	}
	text := s.lineText(line)
	rs := []rune(text)
	switch {
	case strings.Contains(msg, "cannot start any token"):
		inQuote := rune(0)
		for i, r := range rs {
			switch {
			case inQuote != 0:
				if r == inQuote {
					inQuote = 0
				}
			case r == '"' || r == '\'':
				inQuote = r
			case r == '\t' || r == '@' || r == '`' || r == '%' && i > 0:
				return Pos{line, i + 1}
			}
		}
	case strings.Contains(msg, "unknown escape"):
		for i := 0; i+1 < len(rs); i++ {
			if rs[i] == '\\' {
				if _, w := decodeEscape([]byte(string(rs[i:min(len(rs), i+10)]))); w == 0 {
					return Pos{line, i + 1}
				}
				i++
			}
		}
	case strings.HasPrefix(msg, "did not find expected ',' or '") || strings.HasPrefix(msg, "did not find expected node content"):
		// An unclosed [ or {: point at the bracket that opens it.
		if p, ok := s.unclosedBracket(line); ok {
			return p
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		if i := strings.Index(text, "*"+name); i >= 0 {
			return Pos{line, utf8.RuneCountInString(text[:i]) + 1}
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		// `a: b: c` — the second `: ` is the culprit; with one colon the whole
		// key is misplaced (usually indented under a scalar).
		colons := mappingColons(rs)
		if len(colons) >= 2 {
			return Pos{line, colons[1] + 1}
		}
	}
	return Pos{line, s.firstNonBlank(line)}
}

// yamlLineOf extracts the `line N` of a yaml.v3 error (0 when absent).
func yamlLineOf(msg string) int {
	m := yamlLineRe.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// lineEnd is the byte offset just after line l (1-based), newline included.
func (s *source) lineEnd(l int) int {
	if l < len(s.lines) {
		return s.lines[l]
	}
	return len(s.data)
}

func (s *source) lineText(l int) string {
	if l < 1 || l > len(s.lines) {
		return ""
	}
	b := s.data[s.lines[l-1]:s.lineEnd(l)]
	for i := range b {
		if lineBreakLen(b[i:]) > 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// firstNonBlank is the column of the first character of line l that is not a
// space or tab (1 for a blank line).
func (s *source) firstNonBlank(l int) int {
	for i, r := range []rune(s.lineText(l)) {
		if r != ' ' && r != '\t' {
			return i + 1
		}
	}
	return 1
}

// unclosedQuote is the column of a quote on line l that opens a scalar not
// closed on that line, or 0.
func (s *source) unclosedQuote(l int) int {
	rs := []rune(s.lineText(l))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '#' && (i == 0 || rs[i-1] == ' ') {
			return 0 // a comment
		}
		if r != '"' && r != '\'' {
			continue
		}
		// A quote opens a scalar only where a value or key may start.
		j := i - 1
		for j >= 0 && rs[j] == ' ' {
			j--
		}
		if j >= 0 && !strings.ContainsRune(":-[{,?", rs[j]) {
			continue
		}
		closed := false
		for k := i + 1; k < len(rs); k++ {
			if r == '"' && rs[k] == '\\' {
				k++
				continue
			}
			if rs[k] == r {
				if r == '\'' && k+1 < len(rs) && rs[k+1] == '\'' {
					k++
					continue
				}
				closed, i = true, k
				break
			}
		}
		if !closed {
			return i + 1
		}
	}
	return 0
}

// mappingColons returns the rune indexes of the `:` value indicators of a line
// (a colon followed by a space or the line end), outside quotes.
func mappingColons(rs []rune) []int {
	var out []int
	var quote rune
	for i, r := range rs {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			if i == 0 || strings.ContainsRune(" :-[{,", rs[i-1]) {
				quote = r
			}
		case r == '#' && i > 0 && rs[i-1] == ' ':
			return out
		case r == ':' && (i+1 == len(rs) || rs[i+1] == ' ' || rs[i+1] == '\t'):
			out = append(out, i)
		}
	}
	return out
}

// unclosedBracket finds the innermost `[` or `{` still open at the end of line
// upto, ignoring quoted scalars and comments.
func (s *source) unclosedBracket(upto int) (Pos, bool) {
	var stack []Pos
	for l := 1; l <= upto && l <= len(s.lines); l++ {
		rs := []rune(s.lineText(l))
		var quote rune
		for i := 0; i < len(rs); i++ {
			r := rs[i]
			switch {
			case quote != 0:
				if quote == '"' && r == '\\' {
					i++
				} else if r == quote {
					quote = 0
				}
			case r == '"' || r == '\'':
				if i == 0 || strings.ContainsRune(" :-[{,", rs[i-1]) {
					quote = r
				}
			case r == '#' && (i == 0 || rs[i-1] == ' '):
				i = len(rs)
			case r == '[' || r == '{':
				stack = append(stack, Pos{l, i + 1})
			case (r == ']' || r == '}') && len(stack) > 0:
				stack = stack[:len(stack)-1]
			}
		}
	}
	if len(stack) == 0 {
		return Pos{}, false
	}
	return stack[len(stack)-1], true
}

// nodeRange is the range a node covers: a scalar's whole text (quotes
// included), a flow collection up to its closing bracket, else the node's first
// line.
func (s *source) nodeRange(n *yaml.Node) (Pos, Pos) {
	start := s.clamp(nodePos(n))
	if n == nil {
		return start, s.tokenEnd(start)
	}
	off := s.offset(start)
	if off < 0 {
		return start, s.tokenEnd(start)
	}
	switch {
	case n.Kind == yaml.ScalarNode && !(n.Tag == "!!null" && n.Value == ""):
		val := n.Value
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			val = strings.TrimRight(val, "\n")
		}
		end := s.scalarPos(n, utf8.RuneCountInString(val))
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			end.Col++
		}
		if end.Line < start.Line || end.Line == start.Line && end.Col <= start.Col {
			return start, s.tokenEnd(start)
		}
		return start, end
	case (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle != 0:
		if end, ok := s.closingBracket(off); ok {
			return start, end
		}
	}
	return start, s.lineContentEnd(start)
}

// tokenEnd is the end of the token at p: a quoted string up to its closing
// quote, else up to the next space, colon, comma or bracket; at least one
// character.
func (s *source) tokenEnd(p Pos) Pos {
	rs := []rune(s.lineText(p.Line))
	i := p.Col - 1
	if i >= len(rs) {
		return Pos{p.Line, p.Col + 1}
	}
	if q := rs[i]; q == '"' || q == '\'' {
		for j := i + 1; j < len(rs); j++ {
			if q == '"' && rs[j] == '\\' {
				j++
				continue
			}
			if rs[j] == q {
				return Pos{p.Line, j + 2}
			}
		}
		return Pos{p.Line, len(rs) + 1}
	}
	j := i + 1
	for j < len(rs) && !strings.ContainsRune(" \t,]}", rs[j]) && !(rs[j] == ':' && (j+1 == len(rs) || rs[j+1] == ' ')) {
		j++
	}
	return Pos{p.Line, j + 1}
}

// lineContentEnd is the end of line p.Line's content, comment and trailing
// blanks left out.
func (s *source) lineContentEnd(p Pos) Pos {
	rs := []rune(s.lineText(p.Line))
	end := len(rs)
	var quote rune
scan:
	for i := max(p.Col-1, 0); i < len(rs); i++ {
		switch r := rs[i]; {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && i > 0 && (rs[i-1] == ' ' || rs[i-1] == '\t'):
			end = i
			break scan
		}
	}
	for end > p.Col-1 && end > 0 && (rs[end-1] == ' ' || rs[end-1] == '\t') {
		end--
	}
	if end <= p.Col-1 {
		return Pos{p.Line, p.Col + 1}
	}
	return Pos{p.Line, end + 1}
}

// closingBracket finds the bracket that closes the `[` or `{` at byte offset off.
func (s *source) closingBracket(off int) (Pos, bool) {
	depth := 0
	var quote byte
	for i := off; i < len(s.data); i++ {
		c := s.data[i]
		switch {
		case quote != 0:
			if quote == '"' && c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
			if depth == 0 {
				return s.posOf(i + 1), true
			}
		}
	}
	return Pos{}, false
}
