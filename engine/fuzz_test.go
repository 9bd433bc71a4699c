package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzLoad feeds arbitrary bytes to the loader as one flow file. The loader must
// not panic, must never return a set together with errors (or nil without one),
// and every diagnostic must be well-formed and point inside the file.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/broken/*.yaml", "../flows.d/*.yaml"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, paths...)
	}
	if len(seeds) < 37 {
		f.Fatalf("only %d seed files found", len(seeds))
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"\n",
		"flow: x",
		"---\n...\n",
		"[1, 2",
		"a: *b",
		"flow: a\nstart: waba.message\ninitial: s\nstates: {s: {final: true}}\n",
		"flow: a\nstart: waba.message\ninitial: s\nstates:\n  s:\n    always: [{goto: s}]\n",
		"flow: a\nstart: {on: waba.message, when: \"${\"}\ninitial: s\nstates: {s: {on: {waba.message: {goto: s, send: \"$${x} ${vars.y\"}}}}}\n",
		"flow: a\r\nstart: { on: waba.message }\r\ninitial: s\r\nstates:\r\n  s: &x\r\n    on: { waba.message: [ { goto: t } ] }\r\n  t: *x\r\n",
		"flow: a\nstart: { on: waba.message }\ninitial: s\nstates:\n  s:\n    after: { 1d12h: s, 0d: s, 9223372036854775807h: s }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		fs, diags := testLoader.Compile([]File{{Name: name, Data: data}})
		checkDiagnostics(t, data, name, diags)
		if fs == nil && !diags.HasErrors() {
			t.Fatalf("nil flow set without an error:\n%s", formatDiags(diags))
		}
		if fs != nil {
			if diags.HasErrors() {
				t.Fatalf("flow set returned with errors:\n%s", formatDiags(diags))
			}
			for _, fl := range fs.Flows() {
				if fl.States[fl.Initial] == nil {
					t.Fatalf("flow %q: initial state %q is not among its states %v", fl.Name, fl.Initial, fl.StateNames)
				}
			}
		}
		// The same input gives the same diagnostics (no map-order leaks).
		if _, again := testLoader.Compile([]File{{Name: name, Data: data}}); formatDiags(again) != formatDiags(diags) {
			t.Fatalf("diagnostics differ between two runs:\n%s---\n%s", formatDiags(diags), formatDiags(again))
		}
	})
}

// checkDiagnostics asserts what every diagnostic of data must satisfy.
func checkDiagnostics(t *testing.T, data []byte, name string, diags Diagnostics) {
	t.Helper()
	// Lines end where YAML ends them (LF, CRLF, CR, and for yaml.v3 NEL, LS, PS).
	lines := lineBreakRe.Split(string(data), -1)
	for _, d := range diags {
		c, known := codeIndex[d.Code]
		switch {
		case !known:
			t.Fatalf("%v: code %q is not in Codes", d, d.Code)
		case d.Severity != c.Severity && !(d.Code == CodeUnknownEvent || d.Code == CodeFinalWithExits):
			// unknown-event (okdesk.* types) and final-with-exits may be warnings.
			t.Fatalf("%v: severity %s, the code's is %s", d, d.Severity, c.Severity)
		case d.Severity != SevError && d.Severity != SevWarning:
			t.Fatalf("%v: bad severity %q", d, d.Severity)
		case strings.TrimSpace(d.Message) == "":
			t.Fatalf("%v: empty message", d)
		case d.File != name:
			t.Fatalf("%v: file %q, want %q", d, d.File, name)
		case d.Line < 1 || d.Col < 1:
			t.Fatalf("%v: position before the start of the file", d)
		case d.Line > len(lines):
			t.Fatalf("%v: line %d, the input has %d lines", d, d.Line, len(lines))
		}
		text := lines[d.Line-1]
		if n := utf8.RuneCountInString(text); d.Col > n+1 {
			t.Fatalf("%v: column %d, line %d has %d characters: %q", d, d.Col, d.Line, n, text)
		}
		if utf8.Valid(data) {
			checkRanges(t, data, Diagnostics{d})
		}
	}
}

var lineBreakRe = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// yamlQuote writes s as a YAML double-quoted scalar on one line.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x80 && unicode.IsPrint(r), r >= 0x80 && unicode.IsPrint(r) && r != 0xFEFF:
			b.WriteRune(r)
		case r <= 0xFFFF:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// templateFlow is a valid flow with s as a send text (line 10) and as a guard
// (line 13).
func templateFlow(s string) (src string, sendLine, whenLine int) {
	q := yamlQuote(s)
	return `flow: fuzz_template
start: { on: waba.message }
initial: ask
vars:
  name: ""
  tries: 0
states:
  ask:
    enter:
      - send: ` + q + `
    on:
      waba.message:
        - when: ` + q + `
          goto: done
        - goto: done
  done:
    final: true
`, 10, 13
}

// FuzzTemplate feeds arbitrary strings to the template and guard compilers
// through a valid flow: no panic, and every diagnostic sits on the scalar that
// caused it, inside its quotes.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"", "plain text", "${vars.name}", "Заявка №${vars.tries + 1}", "$${literal}", "${", "${}", "${ ",
		"${vars.nmae}", "${event.txt}", "${letters(1)}", "${\"a\" + 1}", "${\"}\"}", "${ {\"a\": 1}.a }",
		"\u0410\u0411 ${event.text + }", "\t${\"\\n\"}\n${vars.name", "len(event.text) > 2", "event.text == \"да\" && )",
		"vars.tries >= 2", "${event.text ?? \"-\"}", "$", "$$", "$${", "${${}}", "🙂${vars.name}🙂", "${'''}",
		"${`x`}", "${1..3}", "${event.data[\"x\"]}", "\x00\x01${vars.name}", "\uFEFF${x}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		src, sendLine, whenLine := templateFlow(s)
		_, diags := testLoader.Compile([]File{{Name: "t.yaml", Data: []byte(src)}})
		checkDiagnostics(t, []byte(src), "t.yaml", diags)
		lines := strings.Split(src, "\n")
		for _, d := range diags {
			switch d.Code {
			case CodeYAMLSyntax:
				t.Fatalf("the test quoted %q wrongly: %v\n%s", s, d, src)
			case CodeExprSyntax, CodeExprType, CodeUnknownVar, CodeBadTemplate:
			default:
				continue
			}
			if d.Line != sendLine && d.Line != whenLine {
				t.Fatalf("%v: not on the send (line %d) or when (line %d) scalar\n%s", d, sendLine, whenLine, src)
			}
			text := []rune(lines[d.Line-1])
			open := strings.IndexRune(string(text), '"')
			openCol := utf8.RuneCountInString(string(text)[:open]) + 1
			if d.Col <= openCol || d.Col > len(text) {
				t.Fatalf("%v: column %d is outside the quoted scalar (cols %d..%d): %s", d, d.Col, openCol, len(text), string(text))
			}
			if d.Code == CodeBadTemplate && !strings.HasPrefix(string(text[d.Col-1:]), "${") {
				t.Fatalf("%v: does not point at the `${` it reports: %q", d, string(text[d.Col-1:]))
			}
		}
	})
}

// FuzzParseTime feeds parse_time what a webhook may carry (1C's dates): it must
// not panic, a failure is an error (never the zero time), and a text without a
// zone is read in the zone given while one with a zone is read the same in any.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-05-10T00:00:00", "2026-05-10", "2026-05-10 14:30", "2026-11-29T15:42:00+03:00",
		"2026-11-29T15:42:00.123Z", "завтра", "", "2026-02-30", "9999-12-31T23:59:59.999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		utc, errU := parseTime(s, "UTC")
		msk, errM := parseTime(s, "Europe/Moscow")
		if (errU == nil) != (errM == nil) {
			t.Fatalf("%q: UTC %v, Moscow %v", s, errU, errM)
		}
		if errU != nil {
			if utc != (time.Time{}) || !strings.Contains(errU.Error(), "is not a time") {
				t.Fatalf("%q: failure gave %v, %v", s, utc, errU)
			}
			return
		}
		// Read without a zone, the wall clock is the same and the instants
		// differ by Moscow's offset then; read with one, they are one instant.
		_, off := msk.Zone()
		if d := utc.Sub(msk); d != 0 && d != time.Duration(off)*time.Second {
			t.Fatalf("%q: UTC %v and Moscow %v differ by %v", s, utc, msk, d)
		}
	})
}

// FuzzParseDuration: a duration is read or refused, never out of its bounds.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90s", "15m", "24h", "2d", "1d12h", "1000000d", "-5m", "0s", "9223372036854775807h", "d", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && (d <= 0 || d > MaxDuration) {
			t.Fatalf("%q = %v, outside (0, %v]", s, d, MaxDuration)
		}
	})
}
