// Package engine holds the flow model of fixit: the loader that turns flows.d YAML
// into an immutable, compiled FlowSet or into positioned diagnostics; the expression
// and template compiler around expr-lang; and the interpreter, a pure step from
// (dialog, event, now) to a new dialog plus the actions, timers and history it produced.
//
// YAML types never leave the loader: the runtime holds compiled values only.
// The durable store lives in engine/store, the normalized event in engine/event.
package engine
