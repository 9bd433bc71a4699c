package waba

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/files"
)

var jpeg = append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, []byte("a photo of the error")...)

// mediaGraph is a fake Graph API for media: GET /{media-id} answers the media URL
// (on this server, /lookaside/{n}), GET of that URL answers the bytes; both
// demand the bearer token. POST /{phone-number-id}/media takes an upload.
type mediaGraph struct {
	t  *testing.T
	mu sync.Mutex
	// content is what the media id serves; urlStatus answers the download (for
	// the first len(urlStatus) downloads), infoStatus the media URL request.
	content    []byte
	sha        string
	urlStatus  []int
	urlBody    string
	infoStatus int
	infos      int
	downloads  int
	uploads    []upload
	sent       [][]byte
	base       string
}

type upload struct {
	product, typ, filename, partType string
	content                          []byte
}

func (g *mediaGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		g.t.Errorf("%s %s: Authorization = %q, want the bearer token", r.Method, r.URL.Path, got)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v21.0/media-1":
		g.infos++
		if g.infoStatus != 0 {
			w.WriteHeader(g.infoStatus)
			fmt.Fprint(w, `{"error":{"message":"boom","type":"OAuthException","code":1,"fbtrace_id":"X"}}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"messaging_product": "whatsapp", "id": "media-1", "mime_type": "image/jpeg",
			"sha256": g.sha, "file_size": fmt.Sprint(len(g.content)), "url": fmt.Sprintf("%s/lookaside/%d?signed=secret", g.base, g.infos)})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/lookaside/"):
		g.downloads++
		if g.downloads <= len(g.urlStatus) {
			w.WriteHeader(g.urlStatus[g.downloads-1])
			fmt.Fprint(w, g.urlBody)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(g.content)
	case r.Method == http.MethodPost && r.URL.Path == "/v21.0/"+testPhoneID+"/media":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			g.t.Errorf("upload is not multipart: %v", err)
		}
		f, h, err := r.FormFile("file")
		if err != nil {
			g.t.Fatalf("upload without a file part: %v", err)
		}
		b, _ := io.ReadAll(f)
		g.uploads = append(g.uploads, upload{product: r.FormValue("messaging_product"), typ: r.FormValue("type"),
			filename: h.Filename, partType: h.Header.Get("Content-Type"), content: b})
		fmt.Fprint(w, `{"id":"uploaded-77"}`)
	case r.Method == http.MethodPost && r.URL.Path == "/v21.0/"+testPhoneID+"/messages":
		b, _ := io.ReadAll(r.Body)
		g.sent = append(g.sent, b)
		fmt.Fprint(w, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.out"}]}`)
	default:
		g.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func newMediaClient(t *testing.T, g *mediaGraph) (*Client, *files.Store) {
	t.Helper()
	g.t = t
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	g.base = srv.URL
	fs, err := files.Open(t.TempDir(), files.NewMemoryDB())
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{BaseURL: srv.URL + "/v21.0", AccessToken: testToken, PhoneNumberIDs: []string{testPhoneID}, HTTP: srv.Client(), Files: fs}), fs
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func b64SHA(b []byte) string { s := sha256.Sum256(b); return base64.StdEncoding.EncodeToString(s[:]) }

func imageFetch(sha string) connectors.Fetch {
	return connectors.Fetch{Source: "waba", Event: 42, Items: []connectors.FetchItem{{Ref: "media-1", Kind: "image", MIME: "image/jpeg", SHA256: sha}}}
}

func TestFetchMedia(t *testing.T) {
	big := append(append([]byte{}, jpeg...), make([]byte, 5<<20)...)
	for _, tc := range []struct {
		name       string
		g          *mediaGraph
		webhookSHA string
		code       string // "" = downloaded
		retryable  bool
		infos      int
	}{
		{name: "media url then the download with the token", g: &mediaGraph{content: jpeg, sha: hexSHA(jpeg)}, infos: 1},
		{name: "the webhook's base64 sha256 is checked", g: &mediaGraph{content: jpeg}, webhookSHA: b64SHA(jpeg), infos: 1},
		{name: "an expired url is asked for again", g: &mediaGraph{content: jpeg, urlStatus: []int{404}}, infos: 2},
		{name: "graph's 131052 asks again", g: &mediaGraph{content: jpeg, urlStatus: []int{400},
			urlBody: `{"error":{"message":"Media download error","code":131052}}`}, infos: 2},
		{name: "expired twice: tried again later", g: &mediaGraph{content: jpeg, urlStatus: []int{410, 410}},
			code: connectors.CodeURLExpired, retryable: true, infos: 2},
		{name: "a 5xx download is retried", g: &mediaGraph{content: jpeg, urlStatus: []int{502}}, code: connectors.CodeServer, retryable: true, infos: 1},
		{name: "a 5xx media url is retried", g: &mediaGraph{content: jpeg, infoStatus: 500}, code: connectors.CodeServer, retryable: true, infos: 1},
		{name: "a 4xx media url is final", g: &mediaGraph{content: jpeg, infoStatus: 400}, code: connectors.CodeBadRequest, infos: 1},
		{name: "a wrong sha256 is final", g: &mediaGraph{content: jpeg, sha: hexSHA([]byte("other"))}, code: connectors.CodeChecksum, infos: 1},
		{name: "an image over 5 MB is refused", g: &mediaGraph{content: big}, code: connectors.CodeTooLarge, infos: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			c, fs := newMediaClient(t, g)
			got, err := c.Fetch(context.Background(), imageFetch(tc.webhookSHA))
			if g.infos != tc.infos {
				t.Errorf("media url asked %d times, want %d", g.infos, tc.infos)
			}
			if tc.code != "" {
				var ce *connectors.Error
				if !errors.As(err, &ce) || ce.Code != tc.code || ce.Retryable != tc.retryable {
					t.Fatalf("Fetch error = %v, want code %s retryable %v", err, tc.code, tc.retryable)
				}
				if strings.Contains(ce.Error(), testToken) || strings.Contains(ce.Error(), "signed=secret") {
					t.Errorf("the error quotes a secret: %v", ce)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].MIME != "image/jpeg" || got[0].Size != int64(len(g.content)) || got[0].SHA256 != hexSHA(g.content) ||
				got[0].Name != "file.jpg" {
				t.Fatalf("Fetch = %+v", got)
			}
			f, rc, err := fs.Open(context.Background(), got[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			if string(b) != string(g.content) || f.ID != got[0].ID {
				t.Errorf("stored %d bytes, want the %d downloaded", len(b), len(g.content))
			}
		})
	}
}

func TestSendStoredFileUploadsIt(t *testing.T) {
	g := &mediaGraph{content: jpeg, sha: hexSHA(jpeg)}
	c, _ := newMediaClient(t, g)
	stored, err := c.Fetch(context.Background(), imageFetch(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   string
		upload bool
	}{
		{"a photo with a caption", map[string]any{"file": stored[0].Map(), "text": "Вот схема"},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"image","image":{"id":"uploaded-77","caption":"Вот схема"}}`, true},
		{"a link to a pdf", map[string]any{"file": "https://example.com/docs/act.pdf"},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"document","document":{"link":"https://example.com/docs/act.pdf","filename":"act.pdf"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(g.uploads)
			res, err := c.Execute(context.Background(), sendReq(tc.params, testNow.Add(-time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(g.sent[len(g.sent)-1]); got != tc.want {
				t.Errorf("message\n got %s\nwant %s", got, tc.want)
			}
			if res.Data["via"] != "media_"+map[bool]string{true: "image", false: "document"}[tc.upload] {
				t.Errorf("via = %v", res.Data["via"])
			}
			if !tc.upload {
				return
			}
			if len(g.uploads) != before+1 {
				t.Fatalf("%d uploads, want one", len(g.uploads)-before)
			}
			u := g.uploads[len(g.uploads)-1]
			if u.product != "whatsapp" || u.typ != "image/jpeg" || u.partType != "image/jpeg" || u.filename != "file.jpg" || string(u.content) != string(jpeg) {
				t.Errorf("upload = %+v", u)
			}
		})
	}
}

func TestSendFileBadParams(t *testing.T) {
	c := New(Config{})
	for _, p := range []map[string]any{
		{"file": "http://example.com/a.jpg"},
		{"file": map[string]any{"name": "no id"}},
		{"file": []any{map[string]any{"id": "a"}, map[string]any{"id": "b"}}},
		{"file": map[string]any{"id": "a"}, "buttons": []any{"Да"}},
	} {
		_, err := c.Execute(context.Background(), sendReq(p, testNow.Add(-time.Hour)))
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != connectors.CodeBadParams {
			t.Errorf("send %v: err = %v, want bad_params", p, err)
		}
	}
}
