// Package store is fixit's durable state: the inbox of normalized events, dialogs and
// their correlation keys, the per-dialog history, durable timers, the outbound action
// outbox, WhatsApp contact windows and the flow versions that running dialogs were
// started on.
//
// [Store] is the interface the engine and the admin API use; [GormStore] implements it
// on SQLite (GORM's github.com/glebarez/sqlite dialector and its driver,
// github.com/glebarez/go-sqlite over modernc.org/sqlite: SQLite translated to pure
// Go, no cgo) and PostgreSQL with the same SQL.
// The schema is created by versioned migrations (migrations.go), never AutoMigrate.
//
// Concurrency model:
//   - SQLite writes through exactly one open connection, the single writer, so every
//     transaction is serialized; they begin IMMEDIATE. Reads made outside a
//     transaction go to a small pool of read-only connections, which WAL mode lets
//     run beside the writer.
//   - PostgreSQL runs a normal pool. A dialog is written only at the revision its
//     writer read ([StepTx.UpdateDialog]; [StepTx.LockDialog] also locks the row
//     for callers that read inside the step); events and outbox items are claimed with
//     FOR UPDATE SKIP LOCKED; timers are claimed by [StepTx.FireTimer]'s conditional
//     update; inbox appends take a transaction-scoped advisory lock so that event
//     sequence numbers are committed in increasing order, which makes
//     [Store.PendingEvents] with an after-seq cursor safe across replicas.
//
// Inside [Store.Step] use only the [StepTx]: on SQLite the step holds the only
// connection, and a call on the Store from within the step would wait for itself.
//
// All times are stored and returned in UTC with microsecond precision (PostgreSQL's).
// Every text value written goes through one sanitizer that turns invalid UTF-8 and
// the NUL character, which PostgreSQL refuses in text, into U+FFFD.
package store
