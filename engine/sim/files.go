package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/fixit-exchange/fixit/connectors"
)

// Fixtures are the named sample files a scenario can send (`fixture:`): small,
// but each starts as its type does, so the file store sniffs the right MIME type.
var Fixtures = map[string][]byte{
	"photo.jpg":    append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00}, []byte("simulated photo")...),
	"photo.png":    append([]byte("\x89PNG\r\n\x1a\n"), []byte("simulated png")...),
	"document.pdf": []byte("%PDF-1.4\n% simulated document\n%%EOF\n"),
	"voice.ogg":    append([]byte("OggS\x00\x02"), []byte("simulated voice note")...),
	"clip.mp4":     append([]byte{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'm', 'p', '4', '2'}, []byte("simulated video")...),
	"sticker.webp": append([]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), []byte("simulated sticker")...),
	"notes.txt":    []byte("simulated notes\n"),
}

// FixtureNames lists the fixtures, sorted.
func FixtureNames() []string { return slices.Sorted(maps.Keys(Fixtures)) }

// defaultFixture is the file a media message of kind carries unless a scenario
// gives one.
func defaultFixture(kind string) string {
	switch kind {
	case "image", "photo":
		return "photo.jpg"
	case "voice", "audio":
		return "voice.ogg"
	case "video":
		return "clip.mp4"
	case "sticker":
		return "sticker.webp"
	}
	return "document.pdf"
}

// File is a file a scenario sends: its name and content.
type File struct {
	Name    string
	Content []byte
}

// FileFor is the file of a media message: the fixture named, or the content given
// (named filename), or the kind's default fixture.
func FileFor(kind, fixture, content, filename string) (File, error) {
	if fixture != "" {
		b, ok := Fixtures[fixture]
		if !ok {
			return File{}, fmt.Errorf("no fixture %q (have %s)", fixture, strings.Join(FixtureNames(), ", "))
		}
		return File{Name: cmpOr(filename, fixture), Content: b}, nil
	}
	if content != "" {
		return File{Name: cmpOr(filename, "file"), Content: []byte(content)}, nil
	}
	name := defaultFixture(kind)
	return File{Name: cmpOr(filename, name), Content: Fixtures[name]}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// contents are the files a Builder's notifications refer to, by source and
// reference, so that the connectors of a world can "download" them. It is safe for
// concurrent use (a processor's outbox workers read it).
type contents struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *contents) put(source, ref string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[source+"\x00"+ref] = b
}

// Content returns the content of the file a notification built by b refers to.
func (b *Builder) Content(source, ref string) ([]byte, bool) {
	b.files.mu.Lock()
	defer b.files.mu.Unlock()
	c, ok := b.files.m[source+"\x00"+ref]
	return c, ok
}

// fetcher downloads the files of one source in a world: the mock table answers
// file.fetch first (a failure, or pending), then the content comes from the
// Builder that wrote the notification, into the world's file store.
type fetcher struct {
	c      *Connectors
	source string
}

func (f fetcher) Source() string { return f.source }

func (f fetcher) Fetch(ctx context.Context, x connectors.Fetch) ([]connectors.File, error) {
	req := connectors.Request{ID: x.Action, Kind: connectors.KindFetch}
	if err := f.c.mockOnly(ctx, req); err != nil {
		return nil, err
	}
	f.c.mu.Lock()
	files, content := f.c.files, f.c.content
	f.c.mu.Unlock()
	if files == nil || content == nil {
		return nil, &connectors.Error{Connector: f.source, Code: connectors.CodeNoFileStore, Message: "the test world has no file store"}
	}
	var out []connectors.File
	for _, it := range x.Items {
		b, ok := content(f.source, it.Ref)
		if !ok {
			return nil, &connectors.Error{Connector: f.source, Code: connectors.CodeNotFound, Status: 404, Message: "no such file: " + it.Ref}
		}
		file, err := files.Save(ctx, connectors.Put{Event: x.Event, Name: it.Name, MIME: it.MIME, Kind: it.Kind, Size: it.Size,
			SHA256: it.SHA256}, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		out = append(out, file)
	}
	return out, nil
}

// UseFiles gives the connectors the file store downloads go to and the source
// of the contents (a Builder's Content).
func (c *Connectors) UseFiles(files connectors.Files, content func(source, ref string) ([]byte, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files, c.content = files, content
}

// fileName is the name of the file a send's file parameter names: a stored file's
// name, or the last part of a URL.
func fileName(v any) string {
	refs, err := connectors.FileRefs("file", v)
	if err != nil || len(refs) == 0 {
		return ""
	}
	if refs[0].URL != "" {
		u := refs[0].URL
		return u[strings.LastIndexByte(u, '/')+1:]
	}
	return refs[0].File.Name
}
