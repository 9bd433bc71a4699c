// Command fixit is the fixit-exchange server and its operator tools.
package main

import (
	"fmt"
	"io"
	"os"

	// Time zones for in_zone() in flows, also in images without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/fixit-exchange/fixit/internal/startsignals"
)

// command is one subcommand of fixit.
type command struct {
	name, usage, summary string
	run                  func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "fixit serve", "run the server (settings from the environment, see .env.example)", runServe},
		{"validate", "fixit validate [--format text|json|sarif] [PATH...]", "check flow and scenario files (default flows.d); exit 1 on any error", runValidate},
		{"graph", "fixit graph [--format mermaid|dot] [--flows PATH] FLOW|FILE", "print a flow's state diagram", runGraph},
		{"schema", "fixit schema", "print the JSON Schema of a flow file (for editors)", runSchema},
		{"test", "fixit test [--flows DIR] [--coverage] [-v] [--run TEXT] [PATH...]", "run flow scenario files (*_test.yaml) with a fake clock and mocked connectors", runTest},
		{"chat", "fixit chat [--flows DIR] [--channel waba|telegram] FLOW", "interactive terminal simulator: type as the customer", runChat},
		{"replay", "fixit replay [export|scenario] [--db DSN] [--flows DIR] …", "re-run recorded dialogs against a candidate flow set; export them; turn one into a scenario", runReplay},
		{"healthcheck", "fixit healthcheck [--url URL] [--timeout 5s]", "ask the local server's /readyz: exit 0 when ready, 1 when not (the image's HEALTHCHECK)", runHealthcheck},
		{"backup", "fixit backup [--db PATH] FILE", "write a consistent copy of the SQLite database to the new FILE, also while serving", runBackup},
		{"restore", "fixit restore [--db PATH] FILE", "replace the SQLite database with the backup FILE (stop the server first)", runRestore},
		{"copy", "fixit copy [--from DB] --to postgres://…", "copy the whole state into a fresh database, checking every table's count (stop the server first)", runCopy},
		{"version", "fixit version", "print version, commit and Go version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "serve" {
		return runServe(args[min(len(args), 1):], stdout, stderr)
	}
	// Only serve handles signals; the others end on them as usual.
	startsignals.Release()
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	if args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
		fmt.Fprintf(stderr, "fixit: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	usage(stdout)
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fixit COMMAND [ARGS]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-55s %s\n", c.usage, c.summary)
	}
}
