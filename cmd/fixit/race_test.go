//go:build race

package main

// raceEnabled: the tests run under the race detector, which makes the in-process
// server about ten times slower; the longest tests take fewer rounds then (make test
// runs them once more, whole, without it).
const raceEnabled = true
