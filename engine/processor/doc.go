// Package processor runs fixit's durable pipeline around the processing rules of
// engine/core. Each part has one job:
//
//   - Inbox (inbox.go): webhooks append events; concurrent appends share one commit.
//   - writer (writer.go): on SQLite, where every write waits for one connection, it
//     groups the steps, appends and outcomes ready at the same moment into one
//     transaction; elsewhere each runs in its own.
//   - router (router.go): reads the stored pending events in order and hands each to
//     the lane of its dialog, or to a start lane when no dialog holds its keys yet.
//   - lanes (lanes.go): one queue per dialog, so a dialog's events are processed one
//     at a time in arrival order and different dialogs in parallel; under intake
//     pressure they yield to the webhooks.
//   - stepper (step.go): processes one event with core.Plan and core.Apply, retrying
//     lost revision races and transient failures.
//   - outbox (outbox.go): claims due actions, performs them with bounded parallelism
//     (one dialog's actions in order) and settles their outcomes with core.Settle.
//   - timers (timers.go): turns due timers into timer events in the inbox.
//   - dialogCache, windowCache (cache.go): on SQLite, the dialogs stepped last and the
//     contacts' last inbound times, so a step need not read them again.
//   - Reload (reload.go): a new flow set is loaded and checked, its versions saved
//     and live dialogs moved, all before one swap.
//
// Every step commits the dialog's state, variables, history, timers, outbox rows and
// the event's status atomically, so a crash at any moment leaves either all of a
// step or none of it.
package processor
