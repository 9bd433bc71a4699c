package engine

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file turns what is wrong with a file as text — its encoding, tabs,
// invisible characters, YAML syntax — into diagnostics in the operator's words,
// pointing at the cause rather than where the parser gave up.

// checkEncoding reports a file that is not UTF-8; the rest of the front end
// needs UTF-8 to count columns.
func (d *YAMLDoc) checkEncoding() bool {
	data := d.src.data
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		d.AddRange(Pos{1, 1}, Pos{1, 2}, SevError, CodeNotUTF8, "the file is UTF-16, not UTF-8", "")
		return false
	}
	if utf8.Valid(data) {
		return true
	}
	off := 0
	for off < len(data) {
		r, w := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && w <= 1 {
			break
		}
		off += w
	}
	p := d.src.posOf(off)
	guess := ""
	if looksCyrillic8bit(data) {
		guess = "; it looks like Windows-1251 (Cyrillic)"
	}
	d.AddRange(p, Pos{p.Line, p.Col + 1}, SevError, CodeNotUTF8,
		fmt.Sprintf("the file is not UTF-8: byte 0x%02X at line %d, column %d is not a character%s", data[off], p.Line, p.Col, guess), "")
	return false
}

// looksCyrillic8bit reports whether most bytes that are not valid UTF-8 fall in
// Windows-1251's letters (0xC0–0xFF, 0xA8, 0xB8).
func looksCyrillic8bit(data []byte) bool {
	var bad, cyr int
	for off := 0; off < len(data); {
		r, w := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && w <= 1 {
			bad++
			if c := data[off]; c >= 0xC0 || c == 0xA8 || c == 0xB8 {
				cyr++
			}
		}
		off += w
	}
	return bad > 0 && cyr*10 >= bad*8
}

// invisibles are characters that look like a space, or like nothing, and that
// YAML reads as text.
var invisibles = map[rune]string{
	'\u00A0': "no-break space", '\u1680': "ogham space", '\u2000': "en quad", '\u2001': "em quad",
	'\u2002': "en space", '\u2003': "em space", '\u2004': "three-per-em space", '\u2005': "four-per-em space",
	'\u2006': "six-per-em space", '\u2007': "figure space", '\u2008': "punctuation space", '\u2009': "thin space",
	'\u200A': "hair space", '\u200B': "zero-width space", '\u200C': "zero-width non-joiner",
	'\u200D': "zero-width joiner", '\u2060': "word joiner", '\u202F': "narrow no-break space",
	'\u205F': "medium mathematical space", '\u3000': "ideographic space", '\uFEFF': "zero-width no-break space (BOM)",
}

// checkInvisible reports invisible characters where YAML's structure is: in a
// line's indentation, and in a plain mapping key (before its colon). It returns
// whether it found any. Lines are scanned as bytes: only a non-ASCII byte in
// those places needs a closer look.
func (d *YAMLDoc) checkInvisible() bool {
	found := false
	data := d.src.data
	for l := 1; l <= len(d.src.lines); l++ {
		line := data[d.src.lines[l-1]:d.src.lineEnd(l)]
		i := 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '-') {
			i++
		}
		if l == 1 && i == 0 && bytes.HasPrefix(line, []byte("\uFEFF")) {
			i = 3 // a byte-order mark opening the file is fine
		}
		where := "indentation"
		at := -1
		if i < len(line) && line[i] >= 0x80 {
			if _, bad := invisibles[decodeRune(line[i:])]; bad {
				at = i
			}
		}
		if at < 0 {
			where, at = "key", keyInvisible(line[i:])
			if at >= 0 {
				at += i
			}
		}
		if at < 0 {
			continue
		}
		r := decodeRune(line[at:])
		col := utf8.RuneCount(line[:at]) + 1
		what := "YAML reads it as text, not as a space"
		if where == "key" {
			what = "the key will not match"
		}
		d.AddRange(Pos{l, col}, Pos{l, col + 1}, SevError, CodeInvisibleChar,
			fmt.Sprintf("line %d has a %s (U+%04X) at column %d, in its %s; %s", l, invisibles[r], r, col, where, what), "")
		found = true
	}
	return found
}

func decodeRune(b []byte) rune {
	r, _ := utf8.DecodeRune(b)
	return r
}

// keyInvisible returns the byte index of an invisible character in the plain
// key that starts b (`key: value`), or -1.
func keyInvisible(b []byte) int {
	if len(b) == 0 || b[0] == '"' || b[0] == '\'' || b[0] == '#' {
		return -1
	}
	first := -1
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == ':' && (i+1 == len(b) || b[i+1] == ' ' || b[i+1] == '\n' || b[i+1] == '\r'):
			return first
		case c == '#' || c == '{' || c == '[' || c == '"' || c == '\'' || c == '\n' || c == '\r':
			return -1
		case c >= 0x80:
			r, w := utf8.DecodeRune(b[i:])
			if _, bad := invisibles[r]; bad && first < 0 {
				first = i
			}
			i += w
			continue
		}
		i++
	}
	return -1
}

var yamlLineRe = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

// yamlError reports yaml.v3's error at its real place, in plain words.
func (d *YAMLDoc) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		msg = m[3]
	}
	p := d.src.yamlErrorPos(err, msg, func(b []byte) error {
		var n yaml.Node
		return yaml.Unmarshal(b, &n)
	})
	hint := ""
	rs := []rune(d.src.lineText(p.Line))
	switch {
	case p.Col-1 < len(rs) && rs[p.Col-1] == '\t':
		msg = fmt.Sprintf("a tab at line %d, column %d: YAML indents with spaces only", p.Line, p.Col)
		hint = "replace the tab with spaces (set your editor to insert spaces)"
	case strings.Contains(msg, "end of stream") && p.Col-1 < len(rs) && (rs[p.Col-1] == '"' || rs[p.Col-1] == '\''):
		msg = "the string this quote opens is never closed"
		hint = "close the string with the same quote on the same line"
	case strings.Contains(msg, "mapping values are not allowed") && len(mappingColons(rs)) >= 2:
		msg = "a colon followed by a space starts a key, but this value already has one"
		hint = "quote a text that holds \": \", e.g. send: \"Привет: как дела\""
	case strings.HasPrefix(msg, "did not find expected ',' or '"):
		hint = "inside { … } or [ … ], quote an expression that holds quotes, commas or colons: when: 'match(event.text, \"^[0-9]+$\")'"
	default:
		if q, ok := d.src.runOnQuote(p.Line); ok {
			// A quote left open earlier swallowed the lines up to here; the
			// parser only noticed at the next quote.
			msg = fmt.Sprintf("the quote opened here is not closed on its line, so the string runs on to line %d", p.Line)
			hint = "close the string with the same quote on the same line"
			p = q
		}
	}
	end := d.src.tokenEnd(p)
	if hint == "" {
		hint = codeIndex[CodeYAMLSyntax].Hint
	}
	d.AddRange(p, end, SevError, CodeYAMLSyntax, msg, hint)
}

// runOnQuote finds, before line upto, a quote that opens a string not closed on
// its line and still open at the line before upto: a quote left open swallows
// the lines after it, and the parser notices only at the next quote.
func (s *source) runOnQuote(upto int) (Pos, bool) {
	for l := upto - 1; l >= 1 && l >= upto-40; l-- {
		c := s.unclosedQuote(l)
		if c == 0 {
			continue
		}
		off := s.offset(Pos{l, c})
		if off < 0 {
			return Pos{}, false
		}
		q := s.data[off]
		end := len(s.data)
		for i := off + 1; i < len(s.data); i++ {
			if q == '"' && s.data[i] == '\\' {
				i++
				continue
			}
			if s.data[i] == q {
				if q == '\'' && i+1 < len(s.data) && s.data[i+1] == '\'' {
					i++
					continue
				}
				end = i
				break
			}
		}
		if s.posOf(end).Line >= upto-1 {
			return Pos{l, c}, true
		}
		return Pos{}, false
	}
	return Pos{}, false
}
