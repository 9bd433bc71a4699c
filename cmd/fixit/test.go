package main

import (
	"fmt"
	"io"

	"github.com/fixit-exchange/fixit/engine/scenario"
)

// runTest is `fixit test [--flows DIR] [--coverage] [-v] [--run TEXT] [PATH...]`.
func runTest(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("test", stderr)
	var opt scenario.TestOptions
	fs.StringVar(&opt.Flows, "flows", "", "flow folder or file for every scenario (default: each scenario file's own folder)")
	fs.BoolVar(&opt.Coverage, "coverage", false, "list the states and branches no scenario reached")
	fs.BoolVar(&opt.Verbose, "v", false, "print passing scenarios too")
	fs.StringVar(&opt.Run, "run", "", "run only the scenarios whose name contains this text")
	paths, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(paths) == 0 {
		paths = []string{envOr("FIXIT_FLOWS", "flows.d")}
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit test: %v\n", err)
		return 1
	}
	opt.Loader = loader
	return scenario.RunTests(paths, opt, stdout, stderr)
}
