package main

import (
	"strings"
	"testing"
)

func TestParsePeople(t *testing.T) {
	tests := []struct {
		value string
		want  map[string]string
		err   string
	}{
		{"", map[string]string{}, ""},
		{" anna:aaaaaaaaaaaaaaaa , ivan:bbbbbbbbbbbbbbbb ", map[string]string{"anna": "aaaaaaaaaaaaaaaa", "ivan": "bbbbbbbbbbbbbbbb"}, ""},
		{"anna", nil, "entry 1 is not name:token"},
		{"anna:aaaaaaaaaaaaaaaa,:bbbbbbbbbbbbbbbb", nil, "entry 2 is not name:token"},
		{"anna:short-secret", nil, "entry 1 (anna): the token is shorter than 16 characters"},
		{"an na:aaaaaaaaaaaaaaaa", nil, "holds a space or markup character"},
		{"anna:aaaaaaaaaaaaaaaa,anna:bbbbbbbbbbbbbbbb", nil, "anna is named twice"},
	}
	for _, tc := range tests {
		got, err := parsePeople("FIXIT_OPERATORS", tc.value)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "FIXIT_OPERATORS: ") {
				t.Errorf("%q: error %v, want one containing %q", tc.value, err, tc.err)
			}
			// The error names the entry, never the token.
			if err != nil && (strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "bbbb")) {
				t.Errorf("%q: the error shows a token: %v", tc.value, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("%q: %v %v", tc.value, got, err)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", tc.value, k, got[k], v)
			}
		}
	}
}
