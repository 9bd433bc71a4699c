// Package replay runs recorded conversations again against a candidate flow set,
// before it goes live: each dialog's recorded events are fed in their original
// order at their recorded times (a fake clock; the candidate's timers fire on the
// way), and each action is answered with the outcome it had, at the point where
// that outcome arrived. The replay runs the processing core in the test world
// (engine/sim), the same rules the server runs.
//
// A dialog comes out "same", "diverged" at the first event where the transitions,
// the variables written or the actions (with their parameters) differ, or
// "stranded" when it waits in a state the candidate flow no longer has and no
// `migrate` maps. A recorded conversation also becomes a scenario file that
// `fixit test` runs (Scenario), with personal data masked.
package replay
