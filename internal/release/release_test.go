package release

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// TestBuild builds the release archive from this tree: it holds exactly the
// promised files, each checksum in SHA256SUMS matches, the binaries are
// executable, and the amd64 one reports the version.
func TestBuild(t *testing.T) {
	const version = "1.2.3-test"
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	path, err := Build(context.Background(), Options{Root: "../..", Version: version, Out: t.TempDir(), Time: at})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "fixit-"+version+".zip" {
		t.Errorf("archive named %s", path)
	}
	archive, err := os.ReadFile(path)
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

// TestBuildIsReproducible builds the archive twice, with the binary of one platform
// to keep it cheap (make dist checks the whole archive the same way): the same
// bytes, although the second build starts later.
func TestBuildIsReproducible(t *testing.T) {
	var archives [][]byte
	for range 2 {
		path, err := Build(context.Background(), Options{Root: "../..", Version: "1.2.3-test", Out: t.TempDir(),
			Platforms: []string{"linux/amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, b)
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Fatalf("two builds differ: %d and %d bytes", len(archives[0]), len(archives[1]))
	}
}

func TestBuildRefusesABadVersion(t *testing.T) {
	for _, v := range []string{"", "1.0/evil", "a b"} {
		if _, err := Build(context.Background(), Options{Root: "../..", Version: v, Out: t.TempDir()}); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
}
