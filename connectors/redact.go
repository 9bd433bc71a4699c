package connectors

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Redacted stands where a secret was removed from a message.
const Redacted = "[redacted]"

// Redact replaces every secret in s, and its query-escaped form, with Redacted.
// Values shorter than 4 bytes are left alone: searching for them would mangle the
// message without protecting anything.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		s = strings.ReplaceAll(s, sec, Redacted)
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, Redacted)
		}
	}
	return s
}

// RedactedError prints a message with the secrets removed while keeping its cause
// reachable for errors.Is and errors.As (context.DeadlineExceeded, net timeouts).
type RedactedError struct {
	Msg string
	Err error
}

func (e RedactedError) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e RedactedError) Unwrap() error { return e.Err }

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence, marking
// the cut with an ellipsis.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
