// Package processor runs fixit's durable pipeline: the group-commit inbox that
// webhooks append to, the router that hands each stored event to its dialog (or
// starts one), the per-dialog lanes that apply interpreter steps one event at a time
// in arrival order, the outbox workers that perform actions with retries, and the
// scheduler that turns due timers into events.
//
// Every step commits the dialog's state, variables, history, timers, outbox rows and
// the event's status atomically, so a crash at any moment leaves either all of a
// step or none of it. On SQLite the writer (writer.go) groups the steps ready at the
// same moment into one transaction; a step that fails is rolled back alone.
package processor
