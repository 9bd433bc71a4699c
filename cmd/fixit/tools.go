package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// offlineLoader is the loader of the commands that run without a server: flows
// are checked against the connectors' specs and limits from the registry built
// in dry-run, and read zone-less times in FIXIT_TZ, exactly as `fixit serve`
// does.
func offlineLoader() (*engine.Loader, error) {
	l, err := engine.NewLoader(registry.DryRun())
	if err != nil {
		return nil, err
	}
	return withZone(l)
}

// withZone applies FIXIT_TZ to a loader.
func withZone(l *engine.Loader) (*engine.Loader, error) {
	l, err := l.WithZone(os.Getenv("FIXIT_TZ"))
	if err != nil {
		return nil, fmt.Errorf("FIXIT_TZ: %w", err)
	}
	return l, nil
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("validate", stderr)
	format := fs.String("format", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{envOr("FIXIT_FLOWS", "flows.d")}
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit validate: %v\n", err)
		return 1
	}
	set, diags := loader.Load(paths...)
	switch *format {
	case "json":
		out := struct {
			OK          bool                `json:"ok"`
			Flows       []map[string]string `json:"flows"`
			Diagnostics engine.Diagnostics  `json:"diagnostics"`
		}{OK: !diags.HasErrors(), Flows: []map[string]string{}, Diagnostics: diags}
		if out.Diagnostics == nil {
			out.Diagnostics = engine.Diagnostics{}
		}
		if set != nil {
			for _, f := range set.Flows() {
				out.Flows = append(out.Flows, map[string]string{"flow": f.Name, "file": f.File, "hash": f.Hash})
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	case "text":
		for _, d := range diags {
			fmt.Fprintln(stdout, d.String())
			if d.Hint != "" {
				fmt.Fprintf(stdout, "    hint: %s\n", d.Hint)
			}
		}
		if set != nil {
			fmt.Fprintf(stderr, "%d flow(s) OK", set.Len())
			if n := len(diags); n > 0 {
				fmt.Fprintf(stderr, ", %d warning(s)", n)
			}
			fmt.Fprintln(stderr)
		}
	default:
		fmt.Fprintf(stderr, "fixit validate: unknown format %q (text or json)\n", *format)
		return 2
	}
	if diags.HasErrors() {
		return 1
	}
	return 0
}

func runGraph(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("graph", stderr)
	format := fs.String("format", "mermaid", "mermaid or dot")
	flows := fs.String("flows", envOr("FIXIT_FLOWS", "flows.d"), "flow folder or file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: fixit graph [--format mermaid|dot] [--flows PATH] FLOW")
		return 2
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit graph: %v\n", err)
		return 1
	}
	set, diags := loader.Load(*flows)
	if set == nil {
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		return 1
	}
	f := set.Flow(fs.Arg(0))
	if f == nil {
		fmt.Fprintf(stderr, "fixit graph: no flow %q in %s\n", fs.Arg(0), *flows)
		return 1
	}
	switch *format {
	case "mermaid":
		err = f.WriteMermaid(stdout)
	case "dot":
		err = f.WriteDot(stdout)
	default:
		fmt.Fprintf(stderr, "fixit graph: unknown format %q (mermaid or dot)\n", *format)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "fixit graph: %v\n", err)
		return 1
	}
	return 0
}

func runSchema(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: fixit schema")
		return 2
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit schema: %v\n", err)
		return 1
	}
	b, err := engine.JSONSchema(loader.Catalog())
	if err != nil {
		fmt.Fprintf(stderr, "fixit schema: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(append(b, '\n'))
	return 0
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	commit, modified := "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(stdout, "fixit %s\ncommit %s%s\n%s %s/%s\n", version, commit, modified, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// envOr returns the variable's value, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
