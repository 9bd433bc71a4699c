package okdesk

import (
	"html"
	"strings"
)

// blockTags end a line of text when they open or close.
var blockTags = map[string]bool{
	"br": true, "p": true, "div": true, "li": true, "ul": true, "ol": true, "tr": true,
	"table": true, "blockquote": true, "pre": true, "hr": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
}

// skipTags have content that is not text.
var skipTags = map[string]bool{"script": true, "style": true, "head": true, "title": true}

// stripHTML turns Okdesk's HTML comment content into plain text: tags are dropped
// (line-breaking ones become "\n"), entities unescaped, HTML whitespace collapsed and at
// most one blank line kept between paragraphs. Text with no tag at all is plain text
// already: only its entities are unescaped and its line breaks are kept.
func stripHTML(s string) string {
	if !strings.Contains(s, "<") {
		return tidyLines(html.UnescapeString(s))
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false                          // a collapsed run of HTML whitespace is pending
	lastGT := strings.LastIndexByte(s, '>') // no tag can complete after it
	for i := 0; i < len(s); {
		c := s[i]
		if c == '<' && (i < lastGT || strings.HasPrefix(s[i:], "<!--")) {
			if end, name, closing, ok := scanTag(s, i); ok {
				i = end
				if skipTags[name] && !closing {
					i = skipUntilClose(s, i, name)
				}
				if blockTags[name] {
					b.WriteByte('\n')
					space = false
				}
				continue
			}
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
			space = true
			i++
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
		i++
	}
	return tidyLines(html.UnescapeString(b.String()))
}

// scanTag reads the tag (or comment, doctype, processing instruction) starting at
// s[i] == '<'. It returns the index after it, the lower-case tag name and whether it is
// a closing tag; ok is false when s[i] does not start a complete tag, in which case the
// '<' is text. A tag ends at the first '>' (Okdesk's editor escapes '>' inside attribute
// values), which keeps the whole strip linear in the length of s.
func scanTag(s string, i int) (end int, name string, closing bool, ok bool) {
	rest := s[i:]
	if strings.HasPrefix(rest, "<!--") {
		if j := strings.Index(rest[4:], "-->"); j >= 0 {
			return i + 4 + j + 3, "", false, true
		}
		return len(s), "", false, true // an unterminated comment hides the rest, as in a browser
	}
	if len(rest) < 2 {
		return 0, "", false, false
	}
	j := 1
	switch {
	case rest[1] == '/':
		closing = true
		j = 2
	case rest[1] == '!' || rest[1] == '?':
		j = 2
	}
	if j == 1 && !isASCIILetter(rest[1]) {
		return 0, "", false, false
	}
	k := j
	for k < len(rest) && (isASCIILetter(rest[k]) || (k > j && rest[k] >= '0' && rest[k] <= '9')) {
		k++
	}
	gt := strings.IndexByte(rest[k:], '>')
	if gt < 0 {
		return 0, "", false, false
	}
	return i + k + gt + 1, strings.ToLower(rest[j:k]), closing, true
}

// skipUntilClose returns the index after the closing tag of name at or after i, or
// len(s) when there is none.
func skipUntilClose(s string, i int, name string) int {
	for j := i; ; j += 2 {
		k := strings.Index(s[j:], "</")
		if k < 0 {
			return len(s)
		}
		j += k
		if len(s)-j-2 >= len(name) && strings.EqualFold(s[j+2:j+2+len(name)], name) {
			if end, _, _, ok := scanTag(s, j); ok {
				return end
			}
			return len(s)
		}
	}
}

// tidyLines normalizes line endings and non-breaking spaces, trims every line and keeps
// at most one blank line in a row.
func tidyLines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\u00a0", " ")
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
