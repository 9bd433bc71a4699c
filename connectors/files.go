package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fixit-exchange/fixit/engine/event"
)

// KindFetch is the action that downloads the files of an inbound message (a
// WhatsApp image, a Telegram document, an Okdesk attachment) into the file store.
// The store queues it with the message; flows never write it. Its parameters are
// a Fetch with the message's Seq.
const KindFetch = event.KindFetch

// Error codes of the file store and the fetches.
const (
	CodeTooLarge      = "too_large"         // over the size cap of its kind: no retry
	CodeChecksum      = "checksum_mismatch" // the bytes do not match the digest the sender gave: no retry
	CodeNoFileStore   = "no_file_store"     // files are not configured: no retry
	CodeFileNotFound  = "file_not_found"    // a file reference names no stored file: no retry
	CodeURLExpired    = "url_expired"       // a download link ran out: fetched again
	CodeUnsupportedFT = "unsupported_file"  // the channel cannot send this file: no retry
)

// File is a stored file as flows see it (event.data.file) and as file and files
// parameters name it: its id in the file store and what is known about it.
type File struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	MIME   string `json:"mime"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// Map is the file as event data: {id, name, mime, size, sha256}.
func (f File) Map() map[string]any {
	return map[string]any{"id": f.ID, "name": f.Name, "mime": f.MIME, "size": f.Size, "sha256": f.SHA256}
}

// FetchItem is one file of an inbound message to download: the sender's own
// reference (a Graph media id, a Telegram file_id, an Okdesk attachment id) and
// what the message says about it.
type FetchItem struct {
	Ref    string `json:"ref"`
	Kind   string `json:"kind,omitempty"` // image, document, audio, video, sticker, voice, photo
	Name   string `json:"name,omitempty"`
	MIME   string `json:"mime,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // as the sender gives it (Meta: hex or base64)
	Issue  string `json:"issue,omitempty"`  // Okdesk: the issue the attachment belongs to
}

// Fetch is what a message's files are fetched from: its source ("waba",
// "telegram", "okdesk") and items, and, in a KindFetch action, the Seq of the
// stored message event whose data receives the files.
type Fetch struct {
	Source string      `json:"source"`
	Items  []FetchItem `json:"items"`
	Event  int64       `json:"event,omitempty"`
	// Action is the id of the fetch's outbox item (Request.ID), for logs.
	Action string `json:"-"`
}

// FetchOf reads the Fetch of a KindFetch action's parameters.
func FetchOf(params map[string]any) (Fetch, error) {
	var f Fetch
	b, err := json.Marshal(params)
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil || f.Source == "" || len(f.Items) == 0 {
		return f, &Error{Connector: "file", Code: CodeBadParams, Message: "a fetch needs a source and items"}
	}
	return f, nil
}

// FilesResult is the result of a fetch: {files: [file…]}.
func FilesResult(files []File) Result {
	l := make([]any, len(files))
	for i, f := range files {
		l[i] = f.Map()
	}
	return Result{Data: map[string]any{"files": l}}
}

// Put says what is known of a file about to be stored.
type Put struct {
	Event  int64  // the Seq of the message it came with (0: none)
	Name   string // the name it was sent with; the store sanitises it
	MIME   string // the type it was declared as; the store sniffs the content
	Kind   string // image, document, …: its size cap
	Size   int64  // the declared size (0: unknown), checked against the cap before any byte is read
	SHA256 string // the digest the sender gave (hex or base64; "" none), checked after the last byte
}

// Files is the file store: downloads stream into it, uploads read from it.
type Files interface {
	// Save streams r into the store. A file over its kind's cap is a CodeTooLarge
	// error and a digest that does not match a CodeChecksum one; nothing is kept.
	Save(ctx context.Context, p Put, r io.Reader) (File, error)
	// Open returns a stored file and its content; a CodeFileNotFound error when no
	// file has the id.
	Open(ctx context.Context, id string) (File, io.ReadCloser, error)
}

// Fetcher downloads the files of one source's messages into the file store (see
// KindFetch).
type Fetcher interface {
	Source() string
	Fetch(ctx context.Context, f Fetch) ([]File, error)
}

// FileRef is what a file or files parameter names: a stored file, or an https URL.
type FileRef struct {
	File File   // ID set: a stored file
	URL  string // an https URL
}

// FileRefs reads an evaluated file or files parameter: a file object (with id), an
// https URL, or a list of them. nil reads as none.
func FileRefs(name string, v any) ([]FileRef, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]FileRef, 0, len(x))
		for i, it := range x {
			if it == nil {
				continue // a message without a file: ${event.data.file} is null
			}
			r, err := FileRefs(fmt.Sprintf("%s[%d]", name, i), it)
			if err != nil {
				return nil, err
			}
			out = append(out, r...)
		}
		return out, nil
	case map[string]any:
		f := File{ID: fileString(x["id"]), Name: fileString(x["name"]), MIME: fileString(x["mime"]), SHA256: fileString(x["sha256"])}
		if n, ok := x["size"].(float64); ok {
			f.Size = int64(n)
		}
		if f.ID == "" {
			return nil, &Error{Code: CodeBadParams, Message: name + ": a file object needs an id"}
		}
		return []FileRef{{File: f}}, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return nil, nil
		}
		if strings.HasPrefix(s, "https://") {
			return []FileRef{{URL: s}}, nil
		}
		return nil, &Error{Code: CodeBadParams, Message: name + ": want a stored file (${event.data.file}) or an https URL"}
	}
	return nil, &Error{Code: CodeBadParams, Message: fmt.Sprintf("%s: want a stored file or an https URL, got %T", name, v)}
}

func fileString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// MediaKindOf is the kind a MIME type is sent as on a messaging channel: image,
// video, audio or document.
func MediaKindOf(mime string) string {
	base, _, _ := strings.Cut(strings.ToLower(mime), ";")
	base = strings.TrimSpace(base)
	switch base {
	case "image/jpeg", "image/png":
		return "image"
	case "video/mp4", "video/3gpp":
		return "video"
	case "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg":
		return "audio"
	}
	return "document"
}
