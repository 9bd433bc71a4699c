package engine

import (
	"strconv"
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

func newSource(name string, data []byte) *source {
	s := &source{name: name, data: data, lines: []int{0}}
	for i, b := range data {
		if b == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// offset turns a position into a byte offset (-1 when outside the file).
func (s *source) offset(p Pos) int {
	if p.Line < 1 || p.Line > len(s.lines) {
		return -1
	}
	o := s.lines[p.Line-1]
	for c := 1; c < p.Col; c++ {
		if o >= len(s.data) || s.data[o] == '\n' {
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
			if i < len(val) && r == val[i] {
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
