package onec

import "testing"

func TestVerifyBearer(t *testing.T) {
	const tok = "onec-7f3c2a10-secret"
	cases := []struct {
		name, expected, header string
		want                   bool
	}{
		{"match", tok, "Bearer " + tok, true},
		{"scheme lower case", tok, "bearer " + tok, true},
		{"scheme upper case", tok, "BEARER " + tok, true},
		{"surrounding spaces", tok, "  Bearer   " + tok + " ", true},
		{"wrong token", tok, "Bearer onec-7f3c2a10-secreT", false},
		{"token prefix", tok, "Bearer onec", false},
		{"basic scheme", tok, "Basic " + tok, false},
		{"no scheme", tok, tok, false},
		{"scheme only", tok, "Bearer", false},
		{"scheme and space", tok, "Bearer ", false},
		{"empty header", tok, "", false},
		{"token unset", "", "Bearer ", false},
		{"token unset, header set", "", "Bearer x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := VerifyBearer(c.expected, c.header); got != c.want {
				t.Errorf("VerifyBearer(%q, %q) = %v, want %v", c.expected, c.header, got, c.want)
			}
		})
	}
}
