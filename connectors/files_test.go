package connectors

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFileRefs(t *testing.T) {
	file := map[string]any{"id": "f1", "name": "a.jpg", "mime": "image/jpeg", "size": float64(3), "sha256": "ab"}
	for _, tc := range []struct {
		in   any
		want []FileRef
		bad  bool
	}{
		{nil, nil, false},
		{"", nil, false},
		{file, []FileRef{{File: File{ID: "f1", Name: "a.jpg", MIME: "image/jpeg", Size: 3, SHA256: "ab"}}}, false},
		{[]any{file, nil, "https://x.example/a.pdf"}, []FileRef{{File: File{ID: "f1", Name: "a.jpg", MIME: "image/jpeg", Size: 3, SHA256: "ab"}},
			{URL: "https://x.example/a.pdf"}}, false},
		{"http://x.example/a.pdf", nil, true},
		{"photo.jpg", nil, true},
		{map[string]any{"name": "x"}, nil, true},
		{42.0, nil, true},
		{[]any{"ftp://x"}, nil, true},
	} {
		got, err := FileRefs("file", tc.in)
		var ce *Error
		if tc.bad {
			if !errors.As(err, &ce) || ce.Code != CodeBadParams {
				t.Errorf("FileRefs(%v) err = %v, want bad_params", tc.in, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("FileRefs(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("FileRefs(%v)[%d] = %+v, want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// FuzzFileRefs: any decoded JSON value gives refs or a bad_params error, never a
// panic, and every ref is a stored file or an https URL.
func FuzzFileRefs(f *testing.F) {
	for _, s := range []string{`{"id":"a"}`, `[{"id":"a"},"https://x/y"]`, `"https://x"`, `null`, `[[["x"]]]`, `{"id":1,"size":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		refs, err := FileRefs("files", v)
		var ce *Error
		if err != nil && (!errors.As(err, &ce) || ce.Code != CodeBadParams) {
			t.Fatalf("FileRefs(%s) error %v is not bad_params", s, err)
		}
		for _, r := range refs {
			if (r.File.ID == "") == (r.URL == "") {
				t.Fatalf("FileRefs(%s) gave %+v", s, r)
			}
		}
	})
}
