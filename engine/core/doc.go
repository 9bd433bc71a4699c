// Package core holds fixit's processing rules, written once: how an event finds its
// dialog or starts one, how a step's result is applied (history, variables, keys,
// timers, outbound actions and the event's status, in the step's transaction), how
// an action's outcome is settled and fed back to its dialog as a result event, how
// a due timer becomes an event, and the operators' controls of a dialog.
//
// The core is synchronous. It works inside the transaction its caller gives it
// (store.StepTx), performs actions through a connectors.Registry, and reads time
// from an injected clock. Two drivers run it:
//
//   - the server's processor (engine/processor) wraps it in concurrency: per-dialog
//     lanes, a group-committing writer, outbox workers, a timer scheduler, caches;
//   - the test world (engine/sim) behind `fixit test`, `fixit chat` and replay runs
//     it one event at a time on an in-memory store, a fake clock and mocked
//     connectors.
//
// So what a scenario proves about a flow is what the server does with it.
package core
