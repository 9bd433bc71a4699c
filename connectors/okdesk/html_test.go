package okdesk

import (
	"strings"
	"testing"
)

func TestStripHTML(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>Инженер будет у вас завтра в 10:00</p>", "Инженер будет у вас завтра в 10:00"},
		{"Заменили дренажный насос", "Заменили дренажный насос"},
		{"plain\nlines &amp; entities", "plain\nlines & entities"},
		{"a<br>b<br/>c<BR />d", "a\nb\nc\nd"},
		{"<p>one</p><p>two</p>", "one\n\ntwo"},
		{"<p>a</p>\n\n   <p>b</p>", "a\n\nb"},
		{"<div>  spaced\n   out   text </div>", "spaced out text"},
		{"<b>bold</b> and <i>it</i>", "bold and it"},
		{"&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"},
		{"<p>x</p><script>alert(1)</script><style>p{}</style>y", "x\ny"},
		{"a <!-- hidden --> b", "a b"},
		{"a <!-- never closed", "a"},
		{"1 < 2 and <3", "1 < 2 and <3"},
		{"<a href=\"https://okdesk.ru\">link</a>", "link"},
		{"<p>a</p><SCRIPT>x</p></script >b", "a\nb"},
		{"unterminated <b", "unterminated <b"},
		{"&nbsp;nbsp&nbsp;", "nbsp"},
		{"<ul><li>one</li><li>two</li></ul>", "one\n\ntwo"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := stripHTML(tc.in); got != tc.want {
			t.Errorf("stripHTML(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestStripHTMLLinear feeds inputs that make a naive tag scanner quadratic; with a
// linear one each finishes at once, with a quadratic one the test runs out of time.
func TestStripHTMLLinear(t *testing.T) {
	const n = 1 << 20
	inputs := []string{
		strings.Repeat("<a '", n/4),
		strings.Repeat("<a ", n/3),
		strings.Repeat("<script></SCRIPT", n/16),
		strings.Repeat("<script>", n/8),
		strings.Repeat("<!-", n/3),
	}
	for _, in := range inputs {
		if out := stripHTML(in); len(out) > len(in) {
			t.Errorf("output longer than input")
		}
	}
}
