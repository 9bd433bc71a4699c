// Command dist builds the release archive (make dist): see package release.
package main

import (
	"context"
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
	path, err := release.Build(context.Background(), release.Options{Root: *root, Version: *version, Out: *out, Go: os.Getenv("GO")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(path)
}
