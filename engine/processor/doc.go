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
//     lost revision races and transient failures, and records a failure with
//     core.Failed when the retries run out.
//   - outbox (outbox.go): claims due actions, performs them with bounded parallelism
//     (one dialog's actions in order) and settles their outcomes with core.Settle,
//     applying a result to its dialog in the same transaction when nothing may come
//     before it.
//   - timers (timers.go): turns due timers into timer events in the inbox.
//   - dialogCache (cache.go): on SQLite only, the dialogs stepped last with their
//     keys, so a step need not read its dialog and the router a known contact's key.
//   - windowCache (cache.go): on every store, contacts' last inbound times while
//     their WhatsApp window is open, so a send or a control need not read them.
//   - Reload (reload.go): a new flow set is loaded and checked; its versions are
//     saved and live dialogs moved in one transaction, then the set is swapped
//     while no step is under way.
//
// Every step commits the dialog's state, variables, history, timers, outbox rows and
// the event's status atomically, so a crash at any moment leaves either all of a
// step or none of it.
package processor
