package files

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/connectors"
)

func TestSave(t *testing.T) {
	jpeg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, []byte("photo")...)
	for _, tc := range []struct {
		name string
		put  connectors.Put
		data []byte
		code string // "" = saved
		mime string
		file string
	}{
		{"sniffed over the declared type", connectors.Put{Name: "IMG 1.png", MIME: "image/png", Kind: "image"}, jpeg, "", "image/jpeg", "IMG 1.png"},
		{"a docx keeps its declared type", connectors.Put{Name: "a.docx", MIME: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Kind: "document"},
			[]byte("PK\x03\x04zip"), "", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a.docx"},
		{"no name: file with the type's extension", connectors.Put{Kind: "image"}, jpeg, "", "image/jpeg", "file.jpg"},
		{"hex digest checked", connectors.Put{Kind: "image", SHA256: "4a7ae9e3d1f1a8ba7d0e98f8f2e8e6af0e7a3a1d5d92bb1c7b0f5d6b0f3b1d00"}, jpeg, connectors.CodeChecksum, "", ""},
		{"declared size over the cap", connectors.Put{Kind: "sticker", Size: 2 << 20}, jpeg, connectors.CodeTooLarge, "", ""},
		{"content over the cap", connectors.Put{Kind: "sticker"}, make([]byte, 1<<20+1), connectors.CodeTooLarge, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := NewMemoryDB()
			s, err := Open(dir, db)
			if err != nil {
				t.Fatal(err)
			}
			f, err := s.Save(context.Background(), tc.put, bytes.NewReader(tc.data))
			tmp, _ := os.ReadDir(filepath.Join(dir, "tmp"))
			if len(tmp) != 0 {
				t.Errorf("left %d temporary files", len(tmp))
			}
			if tc.code != "" {
				var ce *connectors.Error
				if !errors.As(err, &ce) || ce.Code != tc.code || ce.Retryable {
					t.Fatalf("Save = %v, want final %s", err, tc.code)
				}
				if len(db.Rows()) != 0 {
					t.Errorf("a refused file has a row")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.MIME != tc.mime || f.Name != tc.file || f.Size != int64(len(tc.data)) || len(f.SHA256) != 64 {
				t.Errorf("Save = %+v", f)
			}
			got, rc, err := s.Open(context.Background(), f.ID)
			if err != nil {
				t.Fatal(err)
			}
			b := new(bytes.Buffer)
			_, _ = b.ReadFrom(rc)
			rc.Close()
			if got != f || !bytes.Equal(b.Bytes(), tc.data) {
				t.Errorf("Open = %+v, %d bytes", got, b.Len())
			}
			rows := db.Rows()
			if n, err := s.Remove([]string{rows[0].Path, "../escape", ""}); n != 1 || err != nil {
				t.Errorf("Remove = %d, %v", n, err)
			}
			if _, _, err := s.Open(context.Background(), f.ID); err == nil {
				t.Errorf("a removed file still opens")
			}
		})
	}
	s, _ := Open(t.TempDir(), NewMemoryDB())
	var ce *connectors.Error
	if _, _, err := s.Open(context.Background(), "nope"); !errors.As(err, &ce) || ce.Code != connectors.CodeFileNotFound {
		t.Errorf("Open of an unknown id = %v", err)
	}
}

func TestDigestForms(t *testing.T) {
	sum := []byte{0xde, 0xad, 0xbe, 0xef}
	for _, given := range []string{"deadbeef", "DEADBEEF", "3q2+7w==", "3q2-7w"} {
		if !digestMatches(given, sum) {
			t.Errorf("%q does not match", given)
		}
	}
	if digestMatches("beef", sum) {
		t.Errorf("a wrong digest matches")
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/passwd":                "passwd",
		`C:\Users\a\Отчёт.pdf`:            "Отчёт.pdf",
		".hidden":                         "hidden",
		"a\x00b\u200bc:d?.txt":            "abc_d_.txt",
		"":                                "file.pdf",
		strings.Repeat("я", 300) + ".pdf": strings.Repeat("я", 98) + ".pdf",
	} {
		if got := SanitizeName(in, "application/pdf"); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../x", "a/b\\c", "\x00", strings.Repeat("ä", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := SanitizeName(name, "image/jpeg")
		if got == "" || len(got) > 200 || strings.ContainsAny(got, "/\\\x00") || strings.HasPrefix(got, ".") || !utf8.ValidString(got) {
			t.Errorf("SanitizeName(%q) = %q", name, got)
		}
	})
}

func TestDefaultDir(t *testing.T) {
	for db, want := range map[string]string{"data/fixit.db": "data/files", "/var/lib/fixit/x.db": "/var/lib/fixit/files",
		"postgres://u@h/db": "data/files", "": "data/files"} {
		if got := DefaultDir(db); got != filepath.FromSlash(want) {
			t.Errorf("DefaultDir(%q) = %q, want %q", db, got, want)
		}
	}
}
