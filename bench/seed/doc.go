// Command seed fills a fresh fixit SQLite database with N dialogs, for the scale
// part of `make bench`: a store of 1,000,000 dialogs must keep processing speed
// flat and resident memory under 200 MB.
//
//	seed -db PATH -dialogs N [-flow simple_lead] [-hash HASH] [-flows flows.d]
//
// It opens the database with the store's own Open, so the schema comes from the
// store's migrations, and stores the flow versions of -flows as `fixit serve` does,
// so that serve starts on the file without adopting or refusing anything. Then it
// writes, in large transactions of multi-row INSERTs through fixit's own SQLite
// dialector, what a store that has run that many WhatsApp dialogs holds for each:
//
//   - the dialogs row: a state of the flow (spread over all of them, each with the
//     status the flow gives it: mostly active, some in handoff, finished or
//     abandoned), variables as far as the dialog got (name, problem, issue number),
//     the flow version's hash, times that fit the state;
//   - its correlation keys, as the processor binds them: waba:<phone_number_id>:<wa_id> and
//     phone:<wa_id> from the first message, okdesk:issue:<id> once the issue exists;
//     active while the dialog lives, released (inactive) once it has ended;
//   - the pending timers of its state (due in the future: none fires during a run);
//   - the contacts row of its WhatsApp contact (last inbound message time).
//
// Events, history and outbox rows are not written: the processor reads them only
// by their own ids, and a fresh inbox is what the load generator's run appends to.
//
// The contacts are wa_ids 79900000000 and up, never those of bench/loadgen
// (79160000000 to 79160999999), so the measured dialogs start as new ones. Issue
// numbers are 70000000 and up, never Okdesk's dry-run id.
//
// Only SQLite files are seeded, and only fresh ones: seed refuses a database that
// already holds dialogs. Progress, the final counts and the elapsed time go to
// standard error. Exit status 2 means a usage error, 1 a failure.
package main
