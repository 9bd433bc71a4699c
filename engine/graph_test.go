package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGraphGolden draws every shipped and example flow in both formats and compares
// with testdata/graph/<flow>.<format>; -update rewrites them.
func TestGraphGolden(t *testing.T) {
	fs, diags := testLoader.Load("../flows.d", "../examples")
	if fs == nil {
		t.Fatal(diags)
	}
	for _, f := range fs.Flows() {
		for _, format := range []string{"mermaid", "dot"} {
			var buf bytes.Buffer
			var err error
			if format == "mermaid" {
				err = f.WriteMermaid(&buf)
			} else {
				err = f.WriteDot(&buf)
			}
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "graph", f.Name+"."+format)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./engine -run TestGraphGolden -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the golden file:\n%s", path, buf.String())
			}
		}
	}
}
