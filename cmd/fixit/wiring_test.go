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

func TestCheckPeople(t *testing.T) {
	const adm, a, b = "admin-token-0000000", "anna-token-0000000", "vera-token-0000000"
	tests := []struct {
		name         string
		admin        string
		ops, viewers map[string]string
		err          string
	}{
		{"one token each", adm, map[string]string{"anna": a}, map[string]string{"vera": b}, ""},
		{"no people", "", nil, nil, ""},
		{"an operator named admin", adm, map[string]string{"admin": a}, nil, "FIXIT_OPERATORS: the name admin is the administrator's"},
		{"an operator with the admin's token", adm, map[string]string{"anna": adm}, nil, "FIXIT_OPERATORS: anna has the token of admin (FIXIT_ADMIN_TOKEN)"},
		{"two operators, one token", adm, map[string]string{"anna": a, "ivan": a}, nil, "FIXIT_OPERATORS: ivan has the token of anna (FIXIT_OPERATORS)"},
		{"a viewer with an operator's token", adm, map[string]string{"anna": a}, map[string]string{"vera": a}, "FIXIT_VIEWERS: vera has the token of anna (FIXIT_OPERATORS)"},
		{"operators without the admin API", "", map[string]string{"anna": a}, nil, "FIXIT_OPERATORS is set but FIXIT_ADMIN_TOKEN is not"},
		{"viewers without the admin API", "", nil, map[string]string{"vera": b}, "FIXIT_VIEWERS is set but FIXIT_ADMIN_TOKEN is not"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPeople(tc.admin, tc.ops, tc.viewers)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err != nil && (strings.Contains(err.Error(), "-token-")):
				t.Fatalf("the error shows a token: %v", err)
			}
		})
	}
}
