// Package sim is an in-memory world that runs flows the way the real pipeline does
// (engine/processor), without a database, a network or goroutines: a fake clock, a
// set of dialogs with their correlation keys, durable-looking timers, and outbound
// actions answered by a mock table whose outcome comes back as action.done or
// action.failed events.
//
// On top of the world sit the operators' testing tools: scenario files run by
// `fixit test` (RunTests, ParseScenarios, Coverage) and the terminal simulator of
// `fixit chat` (Chat). Both are deterministic: the same input gives the same output.
//
// The pipeline rules the World follows, in the words of docs/flows.md and the
// processor:
//
//   - An inbound event goes to the live dialog bound to the first of its keys that
//     is bound; else it is offered to the flows (engine.Machine.StartFlow); else it
//     is unrouted. Timer and action events name their dialog in data.dialog_id.
//   - A step's result is applied as one unit: history, keys (a key bound to another
//     live dialog is not bound, and the history says so), timers (cancelled states
//     first, then the new timers of the state the dialog is in), outbound actions.
//     A runtime error leaves the dialog unchanged; a dialog whose very first step
//     fails is failed.
//   - Outbound actions are performed after the step, in order; each outcome is a new
//     event processed after the ones already waiting. A pending mock holds an
//     outcome back until World.Complete delivers it (a slow connector call). An
//     ended dialog releases its keys, so the contact's next message starts a new
//     dialog.
//   - While a human has a dialog (handoff), action results and the state's timers
//     still run; other events are held (kept in the history) unless they are among
//     the handoff's `until` events.
//   - WhatsApp's 24-hour window is tracked per contact from the time of its last
//     inbound message; a free-form send outside it goes as its fallback template or
//     fails with code window_closed, as connectors/waba does.
package sim
