package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/scenario"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses args with fs, flags before, between and after the positional
// arguments (`fixit graph simple_lead --format dot`), and returns the positional
// ones; everything after `--` is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
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

// runValidate is `fixit validate [--format text|json|sarif] [PATH...]`: flow files
// are compiled as the server compiles them, scenario files (*_test.yaml) parsed
// as `fixit test` parses them; a folder contributes both.
func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("validate", stderr)
	format := fs.String("format", "text", "output format: text, json or sarif")
	paths, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if *format != "text" && *format != "json" && *format != "sarif" {
		fmt.Fprintf(stderr, "fixit validate: unknown format %q (text, json or sarif)\n", *format)
		return 2
	}
	if len(paths) == 0 {
		paths = []string{envOr("FIXIT_FLOWS", "flows.d")}
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit validate: %v\n", err)
		return 1
	}
	flowPaths, scenarios := splitScenarios(paths)
	var set *engine.FlowSet
	var diags engine.Diagnostics
	if len(flowPaths) > 0 || len(scenarios) == 0 {
		set, diags = loader.Load(flowPaths...)
	}
	type scenarioFile struct {
		File      string `json:"file"`
		Scenarios int    `json:"scenarios"`
	}
	parsed := []scenarioFile{}
	for _, name := range scenarios {
		data, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, engine.Diagnostic{File: name, Line: 1, Col: 1, EndLine: 1, EndCol: 2, Severity: engine.SevError,
				Code: engine.CodeReadError, Message: fmt.Sprintf("cannot read: %v", err), Hint: "check the path and its permissions"})
			continue
		}
		sf, more := scenario.ParseScenarios(name, data)
		diags = append(diags, more...)
		if sf != nil {
			parsed = append(parsed, scenarioFile{File: name, Scenarios: len(sf.Scenarios)})
		}
	}
	diags.Sort()
	switch *format {
	case "json":
		out := struct {
			OK          bool                `json:"ok"`
			Flows       []map[string]string `json:"flows"`
			Scenarios   []scenarioFile      `json:"scenarios"`
			Diagnostics engine.Diagnostics  `json:"diagnostics"`
		}{OK: !diags.HasErrors(), Flows: []map[string]string{}, Scenarios: parsed, Diagnostics: diags}
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
	case "sarif":
		b, err := engine.SARIF(diags, version)
		if err != nil {
			fmt.Fprintf(stderr, "fixit validate: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(append(b, '\n'))
	case "text":
		for _, d := range diags {
			fmt.Fprintln(stdout, d.String())
			if d.Hint != "" {
				fmt.Fprintf(stdout, "    hint: %s\n", d.Hint)
			}
		}
		if !diags.HasErrors() {
			var parts []string
			if set != nil {
				parts = append(parts, fmt.Sprintf("%d flow(s) OK", set.Len()))
			}
			if len(scenarios) > 0 {
				parts = append(parts, fmt.Sprintf("%d scenario file(s) OK", len(parsed)))
			}
			if n := len(diags); n > 0 {
				parts = append(parts, fmt.Sprintf("%d warning(s)", n))
			}
			fmt.Fprintln(stderr, strings.Join(parts, ", "))
		}
	}
	if diags.HasErrors() {
		return 1
	}
	return 0
}

// splitScenarios sorts the paths to validate: scenario files named on their own
// go to the scenario parser; a folder goes to the loader (its flows) and gives
// its scenario files to the parser too.
func splitScenarios(paths []string) (flows, scenarios []string) {
	for _, p := range paths {
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			flows = append(flows, p)
			if entries, err := os.ReadDir(p); err == nil {
				for _, e := range entries {
					if !e.IsDir() && engine.IsScenarioFile(e.Name()) && !strings.HasPrefix(e.Name(), ".") {
						scenarios = append(scenarios, filepath.Join(p, e.Name()))
					}
				}
			}
		case engine.IsScenarioFile(p):
			scenarios = append(scenarios, p)
		default:
			flows = append(flows, p) // a missing path is reported by the loader
		}
	}
	return flows, scenarios
}

// runGraph is `fixit graph [--format mermaid|dot] [--flows PATH] FLOW`; FLOW is a
// flow's name in --flows or a flow file.
func runGraph(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("graph", stderr)
	format := fs.String("format", "mermaid", "mermaid or dot")
	flows := fs.String("flows", envOr("FIXIT_FLOWS", "flows.d"), "flow folder or file")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: fixit graph [--format mermaid|dot] [--flows PATH] FLOW (a flow name or a flow file)")
		return 2
	}
	if *format != "mermaid" && *format != "dot" {
		fmt.Fprintf(stderr, "fixit graph: unknown format %q (mermaid or dot)\n", *format)
		return 2
	}
	name, src := pos[0], *flows
	if st, err := os.Stat(name); err == nil && !st.IsDir() {
		src, name = pos[0], ""
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit graph: %v\n", err)
		return 1
	}
	set, diags := loader.Load(src)
	if set == nil {
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		return 1
	}
	if name == "" {
		if fl := set.Flows(); len(fl) > 0 {
			name = fl[0].Name
		}
	}
	f := set.Flow(name)
	if f == nil {
		fmt.Fprintf(stderr, "fixit graph: no flow %q in %s\n", name, src)
		return 1
	}
	if *format == "dot" {
		err = f.WriteDot(stdout)
	} else {
		err = f.WriteMermaid(stdout)
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
