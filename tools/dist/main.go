// Command dist builds the release archive (make dist): see package release.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/fixit-exchange/fixit/internal/release"
)

func main() {
	version := flag.String("version", "", "version stamped into the binaries and the archive's name")
	out := flag.String("out", "dist", "folder to write fixit-VERSION.zip to")
	root := flag.String("root", ".", "the source tree")
	flag.Parse()
	opts := release.Options{Root: *root, Version: *version, Out: *out, Go: os.Getenv("GO")}
	path, err := release.Build(context.Background(), opts)
	if err != nil {
		fail(err)
	}
	// Every release proves it is reproducible: a second build, elsewhere, must give
	// the same bytes.
	tmp, err := os.MkdirTemp("", "fixit-dist-check")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)
	opts.Out = tmp
	again, err := release.Build(context.Background(), opts)
	if err != nil {
		fail(err)
	}
	a, errA := os.ReadFile(path)
	b, errB := os.ReadFile(again)
	if err := errors.Join(errA, errB); err != nil {
		fail(err)
	}
	if !bytes.Equal(a, b) {
		fail(fmt.Errorf("dist: two builds of %s differ: the build is not reproducible", path))
	}
	fmt.Printf("%s\nsha256 %x (built twice, the same bytes)\n", path, sha256.Sum256(a))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
