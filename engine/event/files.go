package event

// Data fields of a message event that comes with files (a WhatsApp image, a
// Telegram document, Okdesk attachments). The connector's parser sets FieldFetch;
// the store queues the download with the event, and the event reaches its dialog
// once the download is settled: with FieldFile and FieldFiles, or FieldFileError.
const (
	FieldFetch     = "fetch"      // what to download: {source, items: [{ref, kind, name, mime, size, sha256}]}
	FieldFile      = "file"       // the first file: {id, name, mime, size, sha256}
	FieldFiles     = "files"      // every file, in the order the message has them
	FieldFileError = "file_error" // the download failed for good: {code, message}
)

// HasFetch reports whether ev comes with files to download.
func HasFetch(ev *Event) bool {
	_, ok := ev.Data[FieldFetch].(map[string]any)
	return ok
}

// AwaitsFiles reports whether ev's files are still being downloaded: the event
// must not reach a dialog yet, nor may the later events of its contact.
func AwaitsFiles(ev *Event) bool {
	if !HasFetch(ev) {
		return false
	}
	_, done := ev.Data[FieldFiles]
	_, failed := ev.Data[FieldFileError]
	return !done && !failed
}

// KindFetch is the outbound action that downloads a message's files; the store
// queues it with the message (its parameters: the FieldFetch object and the
// message's Seq as "event").
const KindFetch = "file.fetch"
