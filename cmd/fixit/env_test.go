package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEnvExampleDocumentsEverySetting: every FIXIT_* variable the commands read is
// in .env.example (set or commented out) and in the README's configuration table.
func TestEnvExampleDocumentsEverySetting(t *testing.T) {
	example, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, config, _ := strings.Cut(string(readme), "\n## Configuration\n")
	config, _, _ = strings.Cut(config, "\n## ")
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`"(FIXIT_[A-Z_]+)"`)
	found := 0
	for _, src := range sources {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(b), -1) {
			found++
			name := m[1]
			if !regexp.MustCompile(`(?m)^#?` + name + `=`).Match(example) {
				t.Errorf("%s (read in %s) is not in .env.example", name, src)
			}
			if !regexp.MustCompile("(?m)^\\| [^\n]*`" + name + "`").MatchString(config) {
				t.Errorf("%s (read in %s) is not in the README's configuration table", name, src)
			}
		}
	}
	if found < 8 {
		t.Fatalf("found only %d variables read", found)
	}
}
