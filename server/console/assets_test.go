package console

import (
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestVendoredVersions keeps the pinned versions of the Makefile, the record in
// VENDOR.md and the vendored file itself in agreement.
func TestVendoredVersions(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	record, err := fs.ReadFile(Static(), "vendor/VENDOR.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct{ variable, pkg, file string }{
		{"HTMX_VERSION", "htmx.org", "vendor/htmx.min.js"},
		{"HTMX_SSE_VERSION", "htmx-ext-sse", "vendor/htmx-ext-sse.min.js"},
	} {
		m := regexp.MustCompile(`(?m)^` + v.variable + `\s*:=\s*(\S+)$`).FindSubmatch(mk)
		if m == nil {
			t.Fatalf("the Makefile does not pin %s", v.variable)
		}
		version := string(m[1])
		if !strings.Contains(string(record), "| `"+v.pkg+"` (") || !regexp.MustCompile("`"+regexp.QuoteMeta(v.pkg)+"` \\([^)]*\\) \\| "+regexp.QuoteMeta(version)+" \\|").Match(record) {
			t.Errorf("VENDOR.md does not record %s %s", v.pkg, version)
		}
		if _, err := fs.Stat(Static(), "vendor/"+v.pkg+".LICENSE"); err != nil {
			t.Errorf("no licence text of %s: %v", v.pkg, err)
		}
		if b, err := fs.ReadFile(Static(), v.file); err != nil || len(b) < 1000 {
			t.Errorf("%s is missing or empty: %v", v.file, err)
		}
	}
	js, _ := fs.ReadFile(Static(), "vendor/htmx.min.js")
	m := regexp.MustCompile(`(?m)^HTMX_VERSION\s*:=\s*(\S+)$`).FindSubmatch(mk)
	if !strings.Contains(string(js), `version:"`+string(m[1])+`"`) {
		t.Errorf("htmx.min.js is not version %s", m[1])
	}
}
