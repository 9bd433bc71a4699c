package store

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	cases := []struct{ dsn, want string }{
		{"data/fixit.db", "sqlite data/fixit.db"},
		{"/var/lib/fixit.db?_pragma=x", "sqlite /var/lib/fixit.db"},
		{"postgres://fixit:s3cret@db.local:5432/fixit?sslmode=disable&password=s3cret", "postgres db.local:5432/fixit"},
		{"postgresql://u:p%40ss@h/db", "postgres h/db"},
		{"postgres://%zz", "postgres (unparsable URL)"},
	}
	for _, c := range cases {
		got := Describe(c.dsn)
		if got != c.want || strings.Contains(got, "s3cret") {
			t.Errorf("Describe(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
}
