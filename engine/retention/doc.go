// Package retention purges what fixit no longer needs once FIXIT_RETENTION has
// passed: dialogs that ended before the cut-off with everything they own (history,
// timers, correlation keys, outbox items, events), and the rows of no dialog that
// were settled before it (processed and unrouted events, finished actions, the
// last-message times of contacts).
//
// A [Purger] works in small transactions, one batch of dialogs at a time, and rests
// between them (longer while webhooks wait for their commit), so that intake and
// dialog steps, which share the database and, on SQLite, its one writer, never
// wait long behind it. It never touches an active or handed-off dialog, nor an
// ended one that still has an event or an action in flight; failed events are kept
// for an operator to look at. What it removes is counted in
// fixit_retention_purged_total{kind}.
//
// Stored files: the purge deletes the rows of the files (engine/files) of the
// events and dialogs it removes, in the same transaction, and then hands their
// paths to [Config.RemoveFiles], which deletes their contents. A crash between the
// two leaves contents without rows in the file store's folder, which nothing reads
// (never a row without its content while the purge works).
package retention
