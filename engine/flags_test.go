package engine

import "flag"

// update rewrites golden files instead of comparing against them:
// go test ./engine -run TestBrokenFlows -update
var update = flag.Bool("update", false, "rewrite golden files under testdata/")
