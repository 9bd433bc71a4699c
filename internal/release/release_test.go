package release

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuild runs make dist's program (go run ./tools/dist), which builds the
// archive twice and fails unless the two are the same bytes; then it checks the
// archive: exactly the promised files, stamped and moded as they should be, every
// checksum in SHA256SUMS right, and the amd64 binary reporting the version. The
// archive is built outside this (perhaps race-instrumented) test process.
func TestBuild(t *testing.T) {
	const version = "1.2.3-test"
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./tools/dist", "-version", version, "-out", dir)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", at.Unix()))
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "built twice, the same bytes") {
		t.Fatalf("go run ./tools/dist: %v\n%s", err, b)
	}
	archive, err := os.ReadFile(filepath.Join(dir, "fixit-"+version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, "fixit-"+version+"/")
		if !ok {
			t.Errorf("%s is outside the archive's folder", f.Name)
		}
		names = append(names, name)
		if !f.Modified.Equal(at) {
			t.Errorf("%s stamped %v, want %v", name, f.Modified, at)
		}
		mode := f.Mode().Perm()
		if strings.HasPrefix(name, "bin/") != (mode == 0o755) || (mode != 0o755 && mode != 0o644) {
			t.Errorf("%s has mode %v", name, mode)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		contents[name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
	for _, want := range []string{"bin/linux-amd64/fixit", "bin/linux-arm64/fixit", "README.md", "LICENSE", ".env.example",
		"Dockerfile", "docker-compose.yml", "SHA256SUMS", "docs/flows.md", "docs/flow.schema.json", "docs/scenarios.md",
		"flows.d/simple_lead_flow.yaml", "flows.d/simple_lead_flow_test.yaml", "examples/monitoring/fixit-alerts.yml",
		"examples/monitoring/fixit-dashboard.json"} {
		if !slices.Contains(names, want) {
			t.Errorf("the archive lacks %s", want)
		}
	}
	for _, n := range names {
		top, _, _ := strings.Cut(n, "/")
		if !slices.Contains([]string{"bin", "docs", "flows.d", "examples"}, top) && !slices.Contains(files, n) && n != "SHA256SUMS" {
			t.Errorf("the archive holds %s, which was not asked for", n)
		}
		if strings.HasSuffix(n, ".go") || strings.HasSuffix(n, ".db") {
			t.Errorf("the archive holds %s", n)
		}
	}
	sums := strings.Split(strings.TrimSpace(string(contents["SHA256SUMS"])), "\n")
	if len(sums) != len(names)-1 {
		t.Errorf("SHA256SUMS has %d lines for %d other files", len(sums), len(names)-1)
	}
	for _, line := range sums {
		sum, name, ok := strings.Cut(line, "  ")
		h := sha256.Sum256(contents[name])
		if !ok || contents[name] == nil || hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS line %q does not match the archive", line)
		}
	}

	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("cannot run the linux/amd64 binary on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin := filepath.Join(t.TempDir(), "fixit")
	if err := os.WriteFile(bin, contents["bin/linux-amd64/fixit"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "fixit "+version+"\n") {
		t.Errorf("fixit version: %v\n%s", err, out)
	}
}

func TestBuildRefusesABadVersion(t *testing.T) {
	for _, v := range []string{"", "1.0/evil", "a b"} {
		if _, err := Build(context.Background(), Options{Root: "../..", Version: v, Out: t.TempDir()}); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
}
