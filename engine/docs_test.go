package engine

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const (
	refPath    = "../docs/flows.md"
	schemaPath = "../docs/flow.schema.json"
	beginMark  = "<!-- BEGIN GENERATED: go test ./engine -run TestReferenceDoc -update -->\n"
	endMark    = "<!-- END GENERATED -->\n"
)

// TestReferenceDoc keeps docs/flows.md and the spec identical: every key, action,
// parameter, event type, helper and diagnostic code is documented exactly once.
func TestReferenceDoc(t *testing.T) {
	doc, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated-section markers", refPath)
	}
	want := s[:i+len(beginMark)] + ReferenceMarkdown(testLoader.Catalog()) + s[j:]
	if *update {
		if err := os.WriteFile(refPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != s {
		t.Errorf("%s is out of date with engine/spec.go; run `make schema`", refPath)
	}
	for _, c := range Codes {
		if strings.Count(s, "| `"+c.Name+"` |") != 1 {
			t.Errorf("code %s is not documented exactly once", c.Name)
		}
	}
}

// TestSchemaFile keeps docs/flow.schema.json equal to `fixit schema`.
func TestSchemaFile(t *testing.T) {
	want, err := JSONSchema(testLoader.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(schemaPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date; run `make schema`", schemaPath)
	}
}

// TestShippedFlowsDeclareSchema checks the editor hint on every shipped flow.
func TestShippedFlowsDeclareSchema(t *testing.T) {
	files, _ := ReadPaths("../flows.d")
	if len(files) == 0 {
		t.Fatal("no shipped flows")
	}
	for _, f := range files {
		first, _, _ := strings.Cut(string(f.Data), "\n")
		if !strings.HasPrefix(first, "# yaml-language-server: $schema=") {
			t.Errorf("%s: first line must be the yaml-language-server $schema comment", f.Name)
		}
	}
}
