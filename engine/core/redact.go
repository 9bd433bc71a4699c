package core

import (
	"regexp"
	"slices"
	"strings"

	"github.com/fixit-exchange/fixit/engine/event"
)

// quoted matches a quoted literal in an error's text: expression errors quote the
// values they failed on, which may be what a customer wrote.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|` + "`[^`]*`")

// Redact returns an error's text, or a note's, for a log line without the
// customer's content: the event's text, its contact's name, the strings of its
// data and any quoted literal are replaced by "…". (Config.LogContent keeps them.)
func Redact(s string, ev *event.Event) string {
	if ev != nil {
		var content []string
		add := func(v string) {
			if v = strings.TrimSpace(v); len(v) >= 3 {
				content = append(content, v)
			}
		}
		add(ev.Text)
		add(ev.Contact.Name)
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				add(v)
			case map[string]any:
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(ev.Data)
		// Longest first: a name inside the text must not leave the rest of the text.
		slices.SortFunc(content, func(a, b string) int { return len(b) - len(a) })
		for _, c := range content {
			s = strings.ReplaceAll(s, c, "…")
		}
	}
	return quoted.ReplaceAllString(s, `"…"`)
}

// logText is an error's or a note's text as the core's logs show it.
func (c *Core) logText(s string, ev *event.Event) string {
	if c.cfg.LogContent {
		return s
	}
	return Redact(s, ev)
}
