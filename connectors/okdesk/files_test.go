package okdesk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/files"
)

var pdf = []byte("%PDF-1.4\n% the engineer's report\n%%EOF\n")

// formOkdesk is a fake Okdesk that takes multipart issues and comments (the
// files Okdesk would attach) and serves attachments: GET
// /issues/{id}/attachments/{id} describes one, its attachment_url (on a storage
// host of its own) serves the bytes.
type formOkdesk struct {
	t       *testing.T
	mu      sync.Mutex
	fields  map[string]string
	files   map[string]upload
	storage *httptest.Server
	status  int // the storage's answer, 0: 200 with the bytes
	tokens  []string
}

type upload struct {
	name, typ string
	content   []byte
}

func (f *formOkdesk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Query().Get("api_token") != testToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	switch {
	case r.Method == http.MethodPost && (r.URL.Path == "/api/v1/issues/" || r.URL.Path == "/api/v1/issues/1542/comments"):
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			f.t.Fatalf("%s is not multipart: %v (%s)", r.URL.Path, err, r.Header.Get("Content-Type"))
		}
		f.fields, f.files = map[string]string{}, map[string]upload{}
		for k, v := range r.MultipartForm.Value {
			f.fields[k] = v[0]
		}
		for k, hs := range r.MultipartForm.File {
			fh, _ := hs[0].Open()
			b, _ := io.ReadAll(fh)
			f.files[k] = upload{name: hs[0].Filename, typ: hs[0].Header.Get("Content-Type"), content: b}
		}
		fmt.Fprint(w, `{"id": 1542}`)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/issues/1542/attachments/519":
		fmt.Fprintf(w, `{"id": 519, "attachment_file_name": "Отчёт.pdf", "is_public": true, "attachment_file_size": %d,
			"attachment_url": "%s/s3/519?X-Amz-Signature=sig"}`, len(pdf), f.storage.URL)
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func newFormOkdesk(t *testing.T, status int) (*Client, *formOkdesk, *files.Store) {
	t.Helper()
	f := &formOkdesk{t: t, status: status}
	f.storage = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tokens = append(f.tokens, r.URL.Query().Get("api_token"))
		f.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		_, _ = w.Write(pdf)
	}))
	t.Cleanup(f.storage.Close)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	fs, err := files.Open(t.TempDir(), files.NewMemoryDB())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{BaseURL: srv.URL + "/api/v1/", APIToken: testToken, HTTP: srv.Client(), Files: fs})
	if err != nil {
		t.Fatal(err)
	}
	return c, f, fs
}

func storeFile(t *testing.T, fs *files.Store, name string, b []byte) connectors.File {
	t.Helper()
	f, err := fs.Save(context.Background(), connectors.Put{Name: name, Kind: "image"}, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestUploadsFilesAsMultipart(t *testing.T) {
	jpeg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, []byte("photo")...)
	for _, tc := range []struct {
		kind   string
		params func(files []any) map[string]any
		fields map[string]string
		file   string
	}{
		{KindCreateIssue, func(fl []any) map[string]any {
			return map[string]any{"title": "WhatsApp: Анна", "contact_id": "7", "files": fl, "custom_parameters": map[string]any{"serial": "SN1"}}
		}, map[string]string{"issue[title]": "WhatsApp: Анна", "issue[contact_id]": "7", "issue[custom_parameters][serial]": "SN1"},
			"issue[files_attributes][%d][attachment]"},
		{KindComment, func(fl []any) map[string]any {
			return map[string]any{"issue_id": "1542", "content": "фото", "public": true, "author_id": "31", "files": fl}
		}, map[string]string{"comment[content]": "фото", "comment[public]": "true", "comment[author_id]": "31"},
			"comment[attachments_attributes][%d][file]"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c, f, fs := newFormOkdesk(t, 0)
			a, b := storeFile(t, fs, "../../etc/photo.jpg", jpeg), storeFile(t, fs, "", pdf)
			res, err := run(c, tc.kind, tc.params([]any{a.Map(), b.Map()}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["id"] != "1542" {
				t.Errorf("result = %v", res.Data)
			}
			for k, v := range tc.fields {
				if f.fields[k] != v {
					t.Errorf("field %s = %q, want %q (fields %v)", k, f.fields[k], v, f.fields)
				}
			}
			for i, want := range []upload{{"photo.jpg", "image/jpeg", jpeg}, {"file.pdf", "application/pdf", pdf}} {
				got := f.files[fmt.Sprintf(tc.file, i)]
				if got.name != want.name || got.typ != want.typ || !bytes.Equal(got.content, want.content) {
					t.Errorf("file %d = %q %q %d bytes, want %q %q %d bytes", i, got.name, got.typ, len(got.content), want.name, want.typ, len(want.content))
				}
			}
		})
	}
}

func TestFilesParamErrors(t *testing.T) {
	c, _, _ := newFormOkdesk(t, 0)
	for _, files := range []any{"https://example.com/a.pdf", map[string]any{"name": "x"}, 42} {
		_, err := run(c, KindComment, map[string]any{"issue_id": "1542", "content": "c", "files": files})
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != connectors.CodeBadParams {
			t.Errorf("files %v: err = %v, want bad_params", files, err)
		}
	}
	_, err := run(c, KindComment, map[string]any{"issue_id": "1542", "content": "c", "files": []any{map[string]any{"id": "missing"}}})
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Code != connectors.CodeFileNotFound {
		t.Errorf("a file that is not stored: err = %v, want file_not_found", err)
	}
}

func TestFetchAttachment(t *testing.T) {
	fetch := connectors.Fetch{Source: "okdesk", Event: 9, Items: []connectors.FetchItem{{Ref: "519", Issue: "1542", Kind: "document"}}}
	c, f, fs := newFormOkdesk(t, 0)
	got, err := c.Fetch(context.Background(), fetch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "Отчёт.pdf" || got[0].MIME != "application/pdf" || got[0].Size != int64(len(pdf)) {
		t.Fatalf("Fetch = %+v", got)
	}
	_, rc, err := fs.Open(context.Background(), got[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, pdf) {
		t.Errorf("stored %q", b)
	}
	if len(f.tokens) != 1 || f.tokens[0] != "" {
		t.Errorf("the storage host got api_token %q; it must never leave Okdesk's own host", f.tokens)
	}

	for _, tc := range []struct {
		status    int
		code      string
		retryable bool
	}{{503, connectors.CodeServer, true}, {403, connectors.CodeAuth, false}} {
		c, _, _ := newFormOkdesk(t, tc.status)
		_, err := c.Fetch(context.Background(), fetch)
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Retryable != tc.retryable {
			t.Errorf("storage answers %d: err = %v, want %s retryable=%v", tc.status, err, tc.code, tc.retryable)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
}

func TestParsePublicAttachments(t *testing.T) {
	body := `{"event":{"event_type":"new_files","author":{"id":"2","type":"employee"},"attachments":[
		{"id":"519","is_public":true,"attachment_file_name":"Отчёт.pdf","attachment_file_size":"23460"},
		{"id":"520","is_public":false,"attachment_file_name":"internal.xlsx","attachment_file_size":"100"}]},
		"issue":{"id":"1542"}}`
	evs, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	fetch, _ := evs[0].Data["fetch"].(map[string]any)
	items, _ := fetch["items"].([]any)
	if fetch["source"] != "okdesk" || len(items) != 1 {
		t.Fatalf("fetch = %v, want the one public attachment", fetch)
	}
	it := items[0].(map[string]any)
	if it["ref"] != "519" || it["issue"] != "1542" || it["name"] != "Отчёт.pdf" || it["size"] != int64(23460) {
		t.Errorf("item = %v", it)
	}
	// A private comment's attachments stay in Okdesk.
	evs, _ = Parse([]byte(`{"event":{"event_type":"new_comment","comment":{"id":"1","is_public":false,"content":"x"},
		"attachments":[{"id":"519","is_public":true}]},"issue":{"id":"1542"}}`))
	if _, ok := evs[0].Data["fetch"]; ok {
		t.Errorf("a private comment's attachment is fetched: %v", evs[0].Data)
	}
}
