package telegram

import "testing"

func TestVerifySecret(t *testing.T) {
	cases := []struct {
		name, expected, got string
		want                bool
	}{
		{"match", "s3cr3t_Token-1", "s3cr3t_Token-1", true},
		{"mismatch", "s3cr3t_Token-1", "s3cr3t_Token-2", false},
		{"prefix", "s3cr3t_Token-1", "s3cr3t", false},
		{"case differs", "abc", "ABC", false},
		{"header missing", "s3cr3t_Token-1", "", false},
		{"secret unset", "", "anything", false},
		{"both empty", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := VerifySecret(c.expected, c.got); got != c.want {
				t.Errorf("VerifySecret(%q, %q) = %v, want %v", c.expected, c.got, got, c.want)
			}
		})
	}
}
