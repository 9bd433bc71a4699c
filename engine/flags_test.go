package engine

import (
	"flag"

	"github.com/fixit-exchange/fixit/connectors/registry"
)

// update rewrites golden files under testdata/ (and generated docs) instead of
// comparing against them, e.g. go test ./engine -run TestBrokenFlows -update.
// Every test file of the package shares this one flag.
var update = flag.Bool("update", false, "rewrite golden files instead of comparing against them")

// testLoader checks flows against the connectors fixit ships, in dry-run, as
// `fixit validate` does.
var testLoader = MustLoader(registry.DryRun())
