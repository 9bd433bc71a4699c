package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/files"
)

var pdfBytes = []byte("%PDF-1.4\n% a scan\n%%EOF\n")

// fileAPI is a fake Bot API for files: getFile, the file download, sendDocument
// (multipart) and sendPhoto (JSON with a URL).
type fileAPI struct {
	t        *testing.T
	mu       sync.Mutex
	download int // status of the download; 0: 200
	calls    []string
	form     map[string]string
	part     struct{ field, name, typ, content string }
	json     map[string]any
}

func (a *fileAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, r.Method+" "+strings.ReplaceAll(r.URL.Path, testToken, "TOKEN"))
	switch r.URL.Path {
	case "/bot" + testToken + "/getFile":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["file_id"] != "BQACAgIAAxk" {
			a.t.Errorf("getFile file_id = %v", body["file_id"])
		}
		fmt.Fprint(w, `{"ok":true,"result":{"file_id":"BQACAgIAAxk","file_unique_id":"u1","file_size":24,"file_path":"documents/file_3.pdf"}}`)
	case "/file/bot" + testToken + "/documents/file_3.pdf":
		if a.download != 0 {
			w.WriteHeader(a.download)
			return
		}
		_, _ = w.Write(pdfBytes)
	case "/bot" + testToken + "/sendDocument":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			a.t.Fatalf("sendDocument is not multipart: %v", err)
		}
		a.form = map[string]string{}
		for k, v := range r.MultipartForm.Value {
			a.form[k] = v[0]
		}
		for k, hs := range r.MultipartForm.File {
			f, _ := hs[0].Open()
			b, _ := io.ReadAll(f)
			a.part.field, a.part.name, a.part.typ, a.part.content = k, hs[0].Filename, hs[0].Header.Get("Content-Type"), string(b)
		}
		fmt.Fprint(w, `{"ok":true,"result":{"message_id":77,"chat":{"id":512345678}}}`)
	case "/bot" + testToken + "/sendPhoto":
		a.json = map[string]any{}
		_ = json.NewDecoder(r.Body).Decode(&a.json)
		fmt.Fprint(w, `{"ok":true,"result":{"message_id":78}}`)
	default:
		a.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func newFileClient(t *testing.T, a *fileAPI) (*Client, *files.Store) {
	t.Helper()
	a.t = t
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	fs, err := files.Open(t.TempDir(), files.NewMemoryDB())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{BaseURL: srv.URL, Token: testToken, HTTP: srv.Client(), Files: fs})
	if err != nil {
		t.Fatal(err)
	}
	return c, fs
}

var docFetch = connectors.Fetch{Source: "telegram", Event: 5, Items: []connectors.FetchItem{{Ref: "BQACAgIAAxk", Kind: "document",
	Name: "scan.pdf", MIME: "application/pdf", Size: 24}}}

func TestFetchFile(t *testing.T) {
	a := &fileAPI{}
	c, fs := newFileClient(t, a)
	got, err := c.Fetch(context.Background(), docFetch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "scan.pdf" || got[0].MIME != "application/pdf" || got[0].Size != int64(len(pdfBytes)) {
		t.Fatalf("Fetch = %+v", got)
	}
	_, rc, err := fs.Open(context.Background(), got[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, pdfBytes) {
		t.Errorf("stored %q", b)
	}
	if want := "POST /botTOKEN/getFile GET /file/botTOKEN/documents/file_3.pdf"; strings.Join(a.calls, " ") != want {
		t.Errorf("calls %v, want %s", a.calls, want)
	}

	for _, tc := range []struct {
		status    int
		code      string
		retryable bool
	}{{502, connectors.CodeServer, true}, {404, connectors.CodeNotFound, false}} {
		c, _ := newFileClient(t, &fileAPI{download: tc.status})
		_, err := c.Fetch(context.Background(), docFetch)
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Retryable != tc.retryable {
			t.Errorf("download answers %d: err = %v, want %s retryable=%v", tc.status, err, tc.code, tc.retryable)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	big := docFetch
	big.Items = []connectors.FetchItem{{Ref: "x", Kind: "document", Size: 21 << 20}}
	if _, err := c.Fetch(context.Background(), big); err == nil || !strings.Contains(err.Error(), "20 MB") {
		t.Errorf("a 21 MB file: err = %v, want too large", err)
	}
}

func TestSendFile(t *testing.T) {
	a := &fileAPI{}
	c, _ := newFileClient(t, a)
	stored, err := c.Fetch(context.Background(), docFetch)
	if err != nil {
		t.Fatal(err)
	}
	req := func(p map[string]any) connectors.Request {
		return connectors.Request{ID: "1", Kind: "send", Params: p, Dialog: dialog.Dialog{ID: 1, Channel: "telegram", ContactID: "512345678"}}
	}
	res, err := c.Execute(context.Background(), req(map[string]any{"file": stored[0].Map(), "text": "Акт"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["message_id"] != "77" || res.Data["via"] != "document" {
		t.Errorf("result = %v", res.Data)
	}
	if a.form["chat_id"] != "512345678" || a.form["caption"] != "Акт" || a.part.field != "document" || a.part.name != "scan.pdf" ||
		a.part.typ != "application/pdf" || a.part.content != string(pdfBytes) {
		t.Errorf("sendDocument form %v, part %+v", a.form, a.part)
	}
	if _, err := c.Execute(context.Background(), req(map[string]any{"file": "https://example.com/p/photo.jpg"})); err != nil {
		t.Fatal(err)
	}
	if a.json["photo"] != "https://example.com/p/photo.jpg" || a.json["chat_id"] != float64(512345678) {
		t.Errorf("sendPhoto body %v", a.json)
	}
}

func TestParseFetch(t *testing.T) {
	evs, err := Parse([]byte(`{"update_id":1,"message":{"message_id":3,"date":1,"chat":{"id":5,"type":"private"},
		"photo":[{"file_id":"small","file_size":100,"width":90,"height":90},{"file_id":"large","file_size":9000,"width":800,"height":800}],
		"caption":"E5"}}`))
	if err != nil {
		t.Fatal(err)
	}
	fetch, _ := evs[0].Data["fetch"].(map[string]any)
	items, _ := fetch["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["ref"] != "large" || items[0].(map[string]any)["size"] != int64(9000) {
		t.Errorf("fetch = %v, want the largest size", fetch)
	}
	evs, _ = Parse([]byte(`{"update_id":2,"edited_message":{"message_id":3,"date":1,"chat":{"id":5,"type":"private"},
		"document":{"file_id":"d"}}}`))
	if _, ok := evs[0].Data["fetch"]; ok {
		t.Errorf("an edited message's file is fetched again: %v", evs[0].Data)
	}
}
