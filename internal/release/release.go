// Package release builds fixit's release archive, dist/fixit-<version>.zip: static
// binaries for linux/amd64 and linux/arm64, the README, docs/, flows.d/, examples/,
// .env.example, Dockerfile, docker-compose.yml, the licence and SHA256SUMS.
//
// The archive is reproducible: the same source and Go toolchain give the same
// bytes. The binaries are built with -trimpath and an empty build id; the archive's
// entries are sorted, every one stamped with the same time (SOURCE_DATE_EPOCH, or
// the last commit's time) and a fixed mode, and compressed by Go's own deflate.
package release

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Platforms are the systems binaries are built for, as GOOS/GOARCH.
var Platforms = []string{"linux/amd64", "linux/arm64"}

// files and dirs are what the archive takes from the source tree besides the
// binaries; a directory contributes every file git tracks below it.
var (
	files = []string{"README.md", "LICENSE", ".env.example", "Dockerfile", "docker-compose.yml"}
	dirs  = []string{"docs", "flows.d", "examples"}
)

// Options say what to build.
type Options struct {
	// Root is the source tree (the repository's top folder).
	Root string
	// Version is stamped into the binaries (fixit version) and names the archive.
	Version string
	// Out is the folder the archive is written to (created when missing).
	Out string
	// Go is the go command (default "go").
	Go string
	// Time stamps every entry; zero means SOURCE_DATE_EPOCH, else the last
	// commit's time.
	Time time.Time
	// Platforms to build binaries for (default Platforms).
	Platforms []string
}

// Build writes Out/fixit-<Version>.zip and returns its path.
func Build(ctx context.Context, o Options) (string, error) {
	if o.Version == "" || strings.ContainsAny(o.Version, `/\ `) {
		return "", fmt.Errorf("release: version %q is empty or not a file name", o.Version)
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Platforms == nil {
		o.Platforms = Platforms
	}
	if o.Time.IsZero() {
		t, err := stamp(ctx, o.Root)
		if err != nil {
			return "", err
		}
		o.Time = t
	}
	top := "fixit-" + o.Version
	names, err := sourceFiles(ctx, o.Root)
	if err != nil {
		return "", err
	}
	entries := map[string]entry{}
	for _, p := range o.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		bin, err := buildBinary(ctx, o, goos, goarch)
		if err != nil {
			return "", err
		}
		entries[fmt.Sprintf("bin/%s-%s/fixit", goos, goarch)] = entry{data: bin, mode: 0o755}
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(o.Root, filepath.FromSlash(name)))
		if err != nil {
			return "", fmt.Errorf("release: %w", err)
		}
		entries[name] = entry{data: b, mode: 0o644}
	}
	entries["SHA256SUMS"] = entry{data: sums(entries), mode: 0o644}

	var buf bytes.Buffer
	if err := writeZip(&buf, top, entries, o.Time); err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", fmt.Errorf("release: %w", err)
	}
	out := filepath.Join(o.Out, top+".zip")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("release: %w", err)
	}
	return out, nil
}

// entry is one file of the archive.
type entry struct {
	data []byte
	mode fs.FileMode
}

// buildBinary builds the static fixit binary for goos/goarch.
func buildBinary(ctx context.Context, o Options, goos, goarch string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "fixit-dist")
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "fixit")
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath",
		"-ldflags", "-s -w -buildid= -X main.version="+o.Version, "-o", bin, "./cmd/fixit")
	cmd.Dir = o.Root
	// The baseline instruction sets keep the binaries running on any CPU of the
	// architecture (and out of the host's settings).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("release: build fixit for %s/%s: %v\n%s", goos, goarch, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return b, nil
}

// sourceFiles lists the files the archive takes from the tree, slash-separated
// and relative to root: those git tracks when root is a git checkout (so that
// local, untracked flows stay out), else every regular file.
func sourceFiles(ctx context.Context, root string) ([]string, error) {
	args := append([]string{"ls-files", "-z", "--"}, append(slices.Clone(files), dirs...)...)
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = root
	var names []string
	if out, err := cmd.Output(); err == nil {
		for _, n := range strings.Split(string(out), "\x00") {
			if n != "" {
				names = append(names, n)
			}
		}
	} else {
		names = slices.Clone(files)
		for _, d := range dirs {
			err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
				if err != nil || !e.Type().IsRegular() {
					return err
				}
				rel, err := filepath.Rel(root, p)
				names = append(names, filepath.ToSlash(rel))
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("release: %w", err)
			}
		}
	}
	for _, f := range files {
		if !slices.Contains(names, f) {
			return nil, fmt.Errorf("release: %s is missing from the tree", f)
		}
	}
	slices.Sort(names)
	return names, nil
}

// sums is SHA256SUMS: one "hash  name" line per entry, in name order, in the
// format sha256sum -c reads.
func sums(entries map[string]entry) []byte {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		h := sha256.Sum256(entries[name].data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h[:]), name)
	}
	return []byte(b.String())
}

// writeZip writes entries under the folder top, sorted by name, each with the
// time t and its mode.
func writeZip(w *bytes.Buffer, top string, entries map[string]entry, t time.Time) error {
	zw := zip.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		e := entries[name]
		h := &zip.FileHeader{Name: path.Join(top, name), Method: zip.Deflate, Modified: t.UTC()}
		h.SetMode(e.mode)
		f, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		if _, err := f.Write(e.data); err != nil {
			return fmt.Errorf("release: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// stamp is the archive's time: SOURCE_DATE_EPOCH when set, else the time of the
// last commit.
func stamp(ctx context.Context, root string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("release: SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	cmd := exec.CommandContext(ctx, "git", "log", "-1", "--format=%ct")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return time.Time{}, errors.New("release: no commit time (not a git checkout?): set SOURCE_DATE_EPOCH")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("release: commit time %q: %w", out, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
