// Package files is fixit's file store: the attachments of inbound messages
// (WhatsApp media, Telegram photos and documents, Okdesk attachments), downloaded
// by the outbox (the file.fetch action) and uploaded again by actions that take
// files (okdesk.create_issue, okdesk.comment, send).
//
// A file's content is kept in a folder (FIXIT_FILES; by default a "files" folder
// beside the SQLite database) under a random name, and described by a row of the
// database's files table: its id, the event it came with, its sanitised name, the
// MIME type sniffed from its content, size and SHA-256. Writes stream through a
// temporary file that is renamed into place once complete and checked (its kind's
// size cap, the sender's digest), so a file is either whole or absent. Retention
// removes a file's row and content with its dialog's history.
package files
