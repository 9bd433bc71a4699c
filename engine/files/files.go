package files

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Size caps per kind of file, in bytes: WhatsApp's own limits for what a customer
// can send (image 5 MB, audio and video 16 MB, document 100 MB, sticker 500 KB),
// which also bound what fixit can send back; anything else gets the document cap.
var Caps = map[string]int64{
	"image":    5 << 20,
	"photo":    5 << 20,
	"sticker":  1 << 20,
	"audio":    16 << 20,
	"voice":    16 << 20,
	"video":    16 << 20,
	"document": 100 << 20,
}

// DefaultCap is the cap of a file of any other kind.
const DefaultCap int64 = 100 << 20

// CapOf returns the size cap of kind.
func CapOf(kind string) int64 {
	if c, ok := Caps[kind]; ok {
		return c
	}
	return DefaultCap
}

// DB is what the file store keeps its rows in ([store.GormStore] is one).
type DB interface {
	SaveFile(ctx context.Context, f *store.FileRow) error
	GetFile(ctx context.Context, id string) (*store.FileRow, error)
}

// Store keeps files in a folder and their rows in the database. It is a
// connectors.Files and is safe for concurrent use.
type Store struct {
	dir string
	db  DB
}

var _ connectors.Files = (*Store)(nil)

// Open returns the file store in dir, creating the folder when it is missing.
func Open(dir string, db DB) (*Store, error) {
	if dir == "" {
		return nil, errors.New("files: no folder given")
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, fmt.Errorf("files: create %s: %w", dir, err)
	}
	return &Store{dir: dir, db: db}, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// DefaultDir is where files are kept unless FIXIT_FILES says otherwise: a "files"
// folder beside a SQLite database; with PostgreSQL, which has no folder of its
// own, data/files in the working directory (replicas must share one folder: set
// FIXIT_FILES to it).
func DefaultDir(db string) string {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return filepath.Join("data", "files")
	}
	if db == "" {
		db = filepath.Join("data", "fixit.db")
	}
	return filepath.Join(filepath.Dir(db), "files")
}

func fileErr(code, msg string) *connectors.Error {
	return &connectors.Error{Connector: "file", Code: code, Message: msg}
}

// Save streams r into the store; see connectors.Files.
func (s *Store) Save(ctx context.Context, p connectors.Put, r io.Reader) (connectors.File, error) {
	limit := CapOf(p.Kind)
	if p.Size > limit {
		return connectors.File{}, tooLarge(p.Kind, p.Size, limit)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "part-*")
	if err != nil {
		return connectors.File{}, fmt.Errorf("files: create a temporary file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	head := &headBuffer{max: 512}
	n, err := io.Copy(io.MultiWriter(tmp, h, head), io.LimitReader(r, limit+1))
	if err != nil {
		return connectors.File{}, &connectors.Error{Connector: "file", Code: connectors.CodeNetwork, Retryable: true,
			Message: "read the file: " + err.Error(), Err: err}
	}
	if n > limit {
		return connectors.File{}, tooLarge(p.Kind, n, limit)
	}
	sum := h.Sum(nil)
	if p.SHA256 != "" && !digestMatches(p.SHA256, sum) {
		return connectors.File{}, fileErr(connectors.CodeChecksum, "the file's SHA-256 does not match the one its sender gave")
	}
	if err := tmp.Sync(); err != nil {
		return connectors.File{}, fmt.Errorf("files: write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return connectors.File{}, fmt.Errorf("files: write: %w", err)
	}
	id := newID()
	rel := filepath.Join(id[:2], id)
	if err := os.MkdirAll(filepath.Join(s.dir, id[:2]), 0o750); err != nil {
		return connectors.File{}, fmt.Errorf("files: create a folder: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, rel)); err != nil {
		return connectors.File{}, fmt.Errorf("files: move the file into place: %w", err)
	}
	keep = true
	f := connectors.File{ID: id, MIME: Sniff(head.b, p.MIME), Size: n, SHA256: hex.EncodeToString(sum)}
	f.Name = SanitizeName(p.Name, f.MIME)
	row := &store.FileRow{ID: id, Name: f.Name, MIME: f.MIME, Size: n, SHA256: f.SHA256, Path: filepath.ToSlash(rel)}
	if p.Event != 0 {
		ev := p.Event
		row.EventID = &ev
	}
	if err := s.db.SaveFile(ctx, row); err != nil {
		os.Remove(filepath.Join(s.dir, rel))
		return connectors.File{}, err
	}
	return f, nil
}

// Open returns a stored file and its content; see connectors.Files.
func (s *Store) Open(ctx context.Context, id string) (connectors.File, io.ReadCloser, error) {
	row, err := s.db.GetFile(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return connectors.File{}, nil, fileErr(connectors.CodeFileNotFound, "no stored file has the id "+strconvQuote(id))
	}
	if err != nil {
		return connectors.File{}, nil, err
	}
	fh, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(row.Path)))
	if errors.Is(err, os.ErrNotExist) {
		return connectors.File{}, nil, fileErr(connectors.CodeFileNotFound, "the content of file "+id+" is missing from the file store")
	}
	if err != nil {
		return connectors.File{}, nil, fmt.Errorf("files: open %s: %w", id, err)
	}
	return connectors.File{ID: row.ID, Name: row.Name, MIME: row.MIME, Size: row.Size, SHA256: row.SHA256}, fh, nil
}

// Remove deletes the contents at paths (relative to the folder, as the files
// table has them), for retention after their rows are gone; a missing one is no
// error. It returns how many it removed.
func (s *Store) Remove(paths []string) (int, error) {
	n := 0
	var errs []error
	for _, p := range paths {
		if p == "" || strings.Contains(p, "..") {
			continue
		}
		err := os.Remove(filepath.Join(s.dir, filepath.FromSlash(p)))
		switch {
		case err == nil:
			n++
		case !errors.Is(err, os.ErrNotExist):
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func tooLarge(kind string, size, limit int64) *connectors.Error {
	if kind == "" {
		kind = "file"
	}
	return fileErr(connectors.CodeTooLarge, fmt.Sprintf("the %s is larger than %s (at least %s)", kind, human(limit), human(size)))
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// digestMatches compares a sender's SHA-256 (hex, or base64 as Meta's webhooks
// sometimes give it) with sum.
func digestMatches(given string, sum []byte) bool {
	given = strings.TrimSpace(given)
	if strings.EqualFold(given, hex.EncodeToString(sum)) {
		return true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(given); err == nil && string(b) == string(sum) {
			return true
		}
	}
	return false
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// headBuffer keeps the first max bytes written to it (for sniffing).
type headBuffer struct {
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// generic are sniffed types that say less than the type the sender declared.
var generic = map[string]bool{"application/octet-stream": true, "text/plain": true, "application/zip": true,
	"application/ogg": true}

// Sniff returns the MIME type of content whose first bytes are head: the sniffed
// one, or the declared one when sniffing finds only a generic type (a .docx
// sniffs as zip, a voice note as ogg).
func Sniff(head []byte, declared string) string {
	sniffed := http.DetectContentType(head)
	base, _, _ := strings.Cut(sniffed, ";")
	if !generic[base] {
		return sniffed
	}
	if d, _, err := mime.ParseMediaType(declared); err == nil && d != "" {
		return declared
	}
	return sniffed
}

// SanitizeName makes a sender's file name safe to store and to send on: its last
// path element, without control characters or characters file systems refuse, no
// leading dots, at most 200 bytes (keeping the extension). An empty name becomes
// "file" with the extension of mimeType.
func SanitizeName(name, mimeType string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
		case strings.ContainsRune(`:*?"<>|`, r):
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	name = strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	if name == "" {
		name = "file"
		base, _, _ := strings.Cut(mimeType, ";")
		if exts, _ := mime.ExtensionsByType(strings.TrimSpace(base)); len(exts) > 0 {
			name += preferredExt(base, exts)
		}
	}
	if len(name) > 200 {
		ext := filepath.Ext(name)
		if len(ext) > 20 {
			ext = ""
		}
		cut := 200 - len(ext)
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	return name
}

func preferredExt(base string, exts []string) string {
	for _, want := range map[string][]string{"image/jpeg": {".jpg"}, "application/pdf": {".pdf"}, "video/mp4": {".mp4"}}[base] {
		for _, e := range exts {
			if e == want {
				return e
			}
		}
	}
	return exts[0]
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return fmt.Sprintf("%q", s)
}
