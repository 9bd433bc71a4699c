package okdesk

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestVerifyBasic(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, user, pass, header string
		want                     bool
	}{
		{"match", "okdesk", "s3cret", basic("okdesk:s3cret"), true},
		{"scheme case-insensitive", "okdesk", "s3cret", "basic " + base64.StdEncoding.EncodeToString([]byte("okdesk:s3cret")), true},
		{"colon in password", "okdesk", "a:b", basic("okdesk:a:b"), true},
		{"wrong password", "okdesk", "s3cret", basic("okdesk:s3creT"), false},
		{"wrong user", "okdesk", "s3cret", basic("okdesK:s3cret"), false},
		{"both wrong", "okdesk", "s3cret", basic("x:y"), false},
		{"password prefix", "okdesk", "s3cret", basic("okdesk:s3cre"), false},
		{"no colon", "okdesk", "s3cret", basic("okdesks3cret"), false},
		{"empty header", "okdesk", "s3cret", "", false},
		{"bearer", "okdesk", "s3cret", "Bearer " + base64.StdEncoding.EncodeToString([]byte("okdesk:s3cret")), false},
		{"bad base64", "okdesk", "s3cret", "Basic !!!", false},
		{"unset user", "", "s3cret", basic(":s3cret"), false},
		{"unset pass", "okdesk", "", basic("okdesk:"), false},
		{"unset both", "", "", basic(":"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifyBasic(tc.user, tc.pass, tc.header); got != tc.want {
				t.Errorf("VerifyBasic(%q, %q, %q) = %v, want %v", tc.user, tc.pass, tc.header, got, tc.want)
			}
		})
	}
}

// FuzzVerifyBasic: a header verifies only when it decodes to exactly user:pass.
func FuzzVerifyBasic(f *testing.F) {
	f.Add("okdesk", "s3cret", "Basic b2tkZXNrOnMzY3JldA==")
	f.Add("okdesk", "s3cret", "Basic b2tkZXNrOnMzY3JlVA==")
	f.Add("", "", "Basic Og==")
	f.Add("a", "b:c", "basic YTpiOmM=")
	f.Fuzz(func(t *testing.T, user, pass, header string) {
		ok := VerifyBasic(user, pass, header)
		if !ok {
			return
		}
		if user == "" || pass == "" {
			t.Fatal("verified with an unset secret")
		}
		scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if !strings.EqualFold(scheme, "basic") || err != nil || string(raw) != user+":"+pass {
			t.Fatalf("verified %q for %q:%q", header, user, pass)
		}
	})
}
