package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// formatDiags renders diagnostics exactly as `fixit validate` prints them.
func formatDiags(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
		if d.Hint != "" {
			b.WriteString("    hint: ")
			b.WriteString(d.Hint)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestBrokenFlows compiles each testdata/broken/*.yaml alone and compares its
// diagnostics with the .golden file next to it (-update rewrites them). It also
// checks that the goldens together exercise every diagnostic code.
func TestBrokenFlows(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 36 {
		t.Fatalf("found %d broken flows, want at least 36", len(files))
	}
	seen := map[string]bool{}
	for _, path := range files {
		base := filepath.Base(path)
		t.Run(strings.TrimSuffix(base, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fs, diags := testLoader.Compile([]File{{Name: base, Data: data}})
			for _, d := range diags {
				seen[d.Code] = true
			}
			if len(diags) == 0 {
				t.Fatalf("%s produced no diagnostics; a broken flow must", base)
			}
			if fs == nil && !diags.HasErrors() {
				t.Errorf("nil flow set without an error diagnostic")
			}
			if fs != nil && diags.HasErrors() {
				t.Errorf("flow set returned together with errors")
			}
			checkSorted(t, diags)
			checkRanges(t, data, diags)
			got := formatDiags(diags)
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
	// Codes that only a folder or a set of files can produce are covered by
	// TestLoadPathErrors and TestDuplicateFlow.
	// Codes about files, folders or the dialogs of a running server, tested elsewhere.
	fileLevel := map[string]bool{CodeReadError: true, CodeNoFlows: true, CodeDuplicateFlow: true, CodeStrandedDialogs: true,
		CodeReloadFailed: true, CodeStartShadowed: true, CodeAlongsideReplies: true}
	var missing []string
	for _, c := range Codes {
		if !seen[c.Name] && !fileLevel[c.Name] {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("no broken flow exercises these codes: %s", strings.Join(missing, ", "))
	}
}

func checkSorted(t *testing.T, ds Diagnostics) {
	t.Helper()
	sorted := append(Diagnostics(nil), ds...)
	sorted.Sort()
	for i := range ds {
		if ds[i] != sorted[i] {
			t.Errorf("diagnostics are not sorted by position: got %v where %v belongs", ds[i], sorted[i])
			return
		}
	}
}

// checkRanges checks that every diagnostic underlines something inside the file:
// its end is after its start (or at it, for a place at a line's end where
// something is missing) and within the line it ends on.
func checkRanges(t *testing.T, data []byte, ds Diagnostics) {
	t.Helper()
	src := newSource("", data)
	for _, d := range ds {
		atEOL := d.Col == len([]rune(src.lineText(d.Line)))+1
		if d.EndLine < d.Line || d.EndLine == d.Line && (d.EndCol < d.Col || d.EndCol == d.Col && !atEOL) {
			t.Errorf("%v: range ends at %d:%d, not after its start", d, d.EndLine, d.EndCol)
			continue
		}
		if n := len([]rune(src.lineText(d.EndLine))); d.EndCol > n+1 {
			t.Errorf("%v: range ends at column %d, line %d has %d characters", d, d.EndCol, d.EndLine, n)
		}
	}
}

// TestLoadPathErrors covers the folder-level codes: a path that does not exist
// and a folder without flow files.
func TestLoadPathErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	tests := []struct {
		name     string
		path     string
		code     string
		severity Severity
		nilSet   bool
	}{
		{"missing path", missing, CodeReadError, SevError, true},
		{"empty folder", dir, CodeNoFlows, SevWarning, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, diags := testLoader.Load(tt.path)
			if len(diags) != 1 {
				t.Fatalf("got %d diagnostics, want 1:\n%s", len(diags), formatDiags(diags))
			}
			d := diags[0]
			if d.Code != tt.code || d.Severity != tt.severity || d.File != tt.path || d.Line != 1 || d.Col != 1 || d.Hint == "" {
				t.Errorf("got %+v, want %s %s at %s:1:1 with a hint", d, tt.severity, tt.code, tt.path)
			}
			if (fs == nil) != tt.nilSet {
				t.Errorf("flow set nil = %v, want %v", fs == nil, tt.nilSet)
			}
		})
	}
}

// TestDuplicateFlow compiles two valid files that declare the same flow name.
func TestDuplicateFlow(t *testing.T) {
	const src = `flow: twin
start: { on: waba.message }
initial: a
states:
  a:
    final: true
`
	fs, diags := testLoader.Compile([]File{{Name: "a.yaml", Data: []byte(src)}, {Name: "b.yaml", Data: []byte("# the same flow again\n" + src)}})
	want := "b.yaml:2:7: error: duplicate-flow flow \"twin\" is already declared in a.yaml\n" +
		"    hint: give each flow a unique `flow:` name\n"
	if got := formatDiags(diags); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if fs != nil {
		t.Errorf("a flow set with a duplicate flow must be nil")
	}
	// The same files under other names: the second one is always reported.
	_, diags = testLoader.Compile([]File{{Name: "x.yaml", Data: []byte(src)}, {Name: "y.yaml", Data: []byte(src)}})
	if len(diags) != 1 || diags[0].File != "y.yaml" || diags[0].Code != CodeDuplicateFlow {
		t.Errorf("got %v, want one duplicate-flow in y.yaml", diags)
	}
}

// TestGoldenCodesAreKnown guards the goldens themselves: every code they mention
// must be in Codes (a renamed code must not leave stale goldens behind).
func TestGoldenCodesAreKnown(t *testing.T) {
	goldens, _ := filepath.Glob(filepath.Join("testdata", "broken", "*.golden"))
	var unknown []string
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" || strings.HasPrefix(line, "    hint: ") {
				continue
			}
			// file:line:col: severity: code message
			parts := strings.SplitN(line, ": ", 3)
			if len(parts) < 3 {
				t.Errorf("%s: malformed line %q", g, line)
				continue
			}
			code, _, _ := strings.Cut(parts[2], " ")
			if _, ok := codeIndex[code]; !ok {
				unknown = append(unknown, filepath.Base(g)+": "+code)
			}
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("goldens name unknown codes: %s", strings.Join(unknown, "; "))
	}
}

// TestDiagnosticJSONRange: in JSON every diagnostic has a range, also one made
// without an end.
func TestDiagnosticJSONRange(t *testing.T) {
	for _, d := range []Diagnostic{
		{File: "a.yaml", Line: 3, Col: 5, Severity: SevError, Code: CodeStrandedDialogs, Message: "m"},
		{File: "a.yaml", Line: 3, Col: 5, EndLine: 4, EndCol: 2, Severity: SevError, Code: CodeYAMLSyntax, Message: "m"},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Diagnostic
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if _, end := d.Range(); back.EndLine != end.Line || back.EndCol != end.Col || back.EndLine == 0 {
			t.Errorf("%s: range lost", b)
		}
	}
}
