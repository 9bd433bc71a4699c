// Command refserver is the reference WhatsApp webhook of `make bench`: the least
// work that acknowledging a delivery durably takes, measured on the same machine in
// the same run as fixit, so that fixit's figures read as a fraction of a ceiling.
//
// Per request, with net/http and nothing else: read the body (3 MiB limit), check
// X-Hub-Signature-256 (HMAC-SHA256, constant-time compare), decode the JSON, then
// one SQLite transaction through fixit's own SQLite driver and pragmas
// (WAL, busy_timeout, foreign keys, synchronous NORMAL, one connection) that inserts
// each message under a unique dedupe key and upserts its dialog row; answer 200.
package main
