package core

import (
	"testing"

	"github.com/fixit-exchange/fixit/engine/event"
)

func TestRedact(t *testing.T) {
	ev := &event.Event{Text: "мой адрес Ленина 5", Contact: event.Contact{Name: "Анна"},
		Data: map[string]any{"caption": "фото кухни", "list": []any{"кнопка один"}, "n": 3.0, "kind": "ok"}}
	tests := []struct{ in, want string }{
		{"invalid operation: int(мой адрес Ленина 5)", "invalid operation: int(…)"},
		{`cannot parse "что угодно" as number`, `cannot parse "…" as number`},
		{"caption фото кухни, button кнопка один, name Анна", "caption …, button …, name …"},
		{"the dialog's state s: kind ok", "the dialog's state s: kind ok"}, // short strings stay
		{"store: database is locked", "store: database is locked"},
	}
	for _, tc := range tests {
		if got := Redact(tc.in, ev); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Redact(`a "b" c`, nil); got != `a "…" c` {
		t.Errorf("without an event: %q", got)
	}
}
