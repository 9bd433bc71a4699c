// Package scenario is the scenario format behind `fixit test`: files of
// conversations written the way an operator talks about a flow ("she writes
// Здравствуйте, the bot asks for her name"), each step with what must happen.
//
// A file is parsed against one spec of its keys, steps and expectations (spec.go),
// which the documentation's tables are generated from, and reported with the same
// file:line:col diagnostics as a flow file. Each scenario runs in a fresh test world
// (engine/sim), which runs the server's own processing core; the runner compares
// what the world reports with what the step expects and renders a failure with the
// dialog's state, variables and history. Coverage counts the states and transitions
// the scenarios reached.
package scenario
