package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

var (
	e2eJPEG = append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, []byte("the customer's photo of error E5")...)
	e2ePDF  = []byte("%PDF-1.4\n% the engineer's wiring diagram\n%%EOF\n")
)

// fileAPIs plays Graph (media URL, authorised download, upload, messages) and
// Okdesk (contacts, multipart issues and comments, attachments and their storage)
// for the files end-to-end test.
type fileAPIs struct {
	mu       sync.Mutex
	srv      *httptest.Server
	storage  *httptest.Server    // where Okdesk's attachment_url points: another host
	issues   []map[string][]byte // each created issue's multipart fields and files
	uploads  [][]byte            // files uploaded to Graph
	messages []map[string]any    // Graph message bodies
}

func newFileAPIs(t *testing.T) *fileAPIs {
	f := &fileAPIs{}
	f.storage = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/s3/519" || r.URL.Query().Get("api_token") != "" {
			w.WriteHeader(403) // the storage must not get Okdesk's token
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		_, _ = w.Write(e2ePDF)
	}))
	t.Cleanup(f.storage.Close)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		graph := r.Header.Get("Authorization") == "Bearer e2e-graph-token"
		okdesk := r.URL.Query().Get("api_token") == "e2e-okdesk-token"
		w.Header().Set("Content-Type", "application/json")
		switch {
		case graph && r.Method == "GET" && r.URL.Path == "/v21.0/media.e2e.1":
			sum := sha256.Sum256(e2eJPEG)
			fmt.Fprintf(w, `{"messaging_product":"whatsapp","id":"media.e2e.1","mime_type":"image/jpeg","sha256":"%s","file_size":"%d","url":"%s/lookaside/1?sig=x"}`,
				hex.EncodeToString(sum[:]), len(e2eJPEG), f.srv.URL)
		case graph && r.Method == "GET" && r.URL.Path == "/lookaside/1":
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(e2eJPEG)
		case graph && r.Method == "POST" && r.URL.Path == "/v21.0/498761234560011/media":
			file, _, err := r.FormFile("file")
			if err != nil || r.FormValue("messaging_product") != "whatsapp" {
				w.WriteHeader(400)
				return
			}
			b, _ := io.ReadAll(file)
			f.uploads = append(f.uploads, b)
			fmt.Fprintf(w, `{"id":"uploaded.%d"}`, len(f.uploads))
		case graph && r.Method == "POST" && r.URL.Path == "/v21.0/498761234560011/messages":
			var m map[string]any
			_ = json.NewDecoder(r.Body).Decode(&m)
			f.messages = append(f.messages, m)
			fmt.Fprintf(w, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.e2e.%d"}]}`, len(f.messages))
		case okdesk && r.Method == "GET" && r.URL.Path == "/api/v1/contacts/":
			fmt.Fprint(w, `{"id": 21, "first_name": "Анна", "phone": "+79161234567"}`)
		case okdesk && r.Method == "POST" && r.URL.Path == "/api/v1/issues/":
			got := map[string][]byte{}
			if err := r.ParseMultipartForm(1 << 20); err == nil {
				for k, v := range r.MultipartForm.Value {
					got[k] = []byte(v[0])
				}
				for k, hs := range r.MultipartForm.File {
					fh, _ := hs[0].Open()
					got[k], _ = io.ReadAll(fh)
				}
			}
			f.issues = append(f.issues, got)
			fmt.Fprint(w, `{"id": 1542}`)
		case okdesk && r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/comments"):
			fmt.Fprint(w, `{"id": 5881}`)
		case okdesk && r.Method == "GET" && r.URL.Path == "/api/v1/issues/1542/attachments/519":
			fmt.Fprintf(w, `{"id":519,"attachment_file_name":"schema.pdf","is_public":true,"attachment_url":"%s/s3/519?X-Amz-Signature=s"}`, f.storage.URL)
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"errors":"not found"}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func waImage(n int, mediaID, caption string) []byte {
	c, _ := json.Marshal(caption)
	return []byte(fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"310452285489102","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"74951234567","phone_number_id":"498761234560011"},"contacts":[{"profile":{"name":"Anna"},"wa_id":"79161234567"}],"messages":[{"from":"79161234567","id":"wamid.e2e.in.%d","timestamp":"%d","type":"image","image":{"id":%q,"mime_type":"image/jpeg","caption":%s}}]},"field":"messages"}]}]}`,
		n, time.Now().Unix(), mediaID, c))
}

// TestServeFilesEndToEnd: a WhatsApp photo reaches the fake Okdesk as an attachment
// of the issue it creates, and a public file an engineer adds in Okdesk reaches the
// fake Graph API as a document; on SQLite and PostgreSQL.
func TestServeFilesEndToEnd(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		apis := newFileAPIs(t)
		dir := filepath.Join(t.TempDir(), "files")
		in := startFixit(t, dsn, "../../flows.d", "FIXIT_FILES="+dir,
			"WABA_API_URL="+apis.srv.URL+"/v21.0", "WABA_ACCESS_TOKEN=e2e-graph-token", "WABA_PHONE_NUMBER_ID=498761234560011",
			"OKDESK_API_URL="+apis.srv.URL+"/api/v1", "OKDESK_API_TOKEN=e2e-okdesk-token")
		sent := func() int { apis.mu.Lock(); defer apis.mu.Unlock(); return len(apis.messages) }
		in.postWA(waText(1, "Здравствуйте"))
		eventually(t, "the greeting", func() bool { return sent() >= 1 })
		in.postWA(waText(2, "Анна"))
		eventually(t, "the question about the problem", func() bool { return sent() >= 2 })
		in.postWA(waImage(3, "media.e2e.1", "Ошибка E5 на табло"))
		eventually(t, "the issue number", func() bool { return sent() >= 3 })

		apis.mu.Lock()
		if len(apis.issues) != 1 {
			t.Fatalf("%d issues created, want 1", len(apis.issues))
		}
		issue := apis.issues[0]
		apis.mu.Unlock()
		if !bytes.Equal(issue["issue[files_attributes][0][attachment]"], e2eJPEG) || !strings.Contains(string(issue["issue[description]"]), "Ошибка E5") {
			t.Errorf("the issue was created without the photo: fields %v", keysOf(issue))
		}
		if n := countFiles(t, dir); n != 1 {
			t.Errorf("%d files in FIXIT_FILES, want the photo", n)
		}

		// The engineer attaches a public file to issue 1542.
		body := []byte(`{"event":{"event_type":"new_files","author":{"id":"2","type":"employee"},"attachments":[{"id":"519","is_public":true,"attachment_file_name":"schema.pdf","attachment_file_size":"45"}]},"issue":{"id":"1542"}}`)
		if code, b := in.do("POST", "/webhooks/okdesk", body, "Authorization", basic(okdeskUser, okdeskPass)); code != 200 {
			t.Fatalf("okdesk webhook: %d %s", code, b)
		}
		eventually(t, "the engineer's file sent as a document", func() bool { return sent() >= 4 })
		apis.mu.Lock()
		doc, uploads := apis.messages[3], apis.uploads
		apis.mu.Unlock()
		d, _ := doc["document"].(map[string]any)
		if doc["type"] != "document" || d["id"] != "uploaded.1" || d["filename"] != "schema.pdf" || !strings.Contains(fmt.Sprint(d["caption"]), "1542") {
			t.Errorf("message %v, want the uploaded document with its caption", doc)
		}
		if len(uploads) != 1 || !bytes.Equal(uploads[0], e2ePDF) {
			t.Errorf("Graph got %d uploads, want the engineer's pdf", len(uploads))
		}
		logs := in.logText()
		for _, secret := range []string{"e2e-graph-token", "e2e-okdesk-token", "the customer's photo", "wiring diagram", "sig=x", "X-Amz-Signature"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log contains %q", secret)
			}
		}
	})
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && !d.IsDir() && !strings.HasPrefix(rel, "tmp"+string(filepath.Separator)) {
			n++
		}
		return nil
	})
	return n
}
