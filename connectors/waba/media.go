package waba

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
)

// Media kinds a message can carry, and WhatsApp's size caps for what a business
// sends (Cloud API media reference): above its kind's cap a file goes as a document.
var mediaCaps = map[string]int64{"image": 5 << 20, "audio": 16 << 20, "video": 16 << 20, "document": 100 << 20}

// outMedia is the media object of an image, audio, video or document message:
// an uploaded media id or a link.
type outMedia struct {
	ID       string `json:"id,omitempty"`
	Link     string `json:"link,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// Source returns "waba": the client fetches the files of WhatsApp messages.
func (c *Client) Source() string { return "waba" }

var _ connectors.Fetcher = (*Client)(nil)

// mediaInfo is the answer of GET /{media-id}: where the file is for the next
// five minutes, and what it is.
type mediaInfo struct {
	URL      string `json:"url"`
	MIMEType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	FileSize string `json:"file_size"`
}

// Fetch downloads the media of a WhatsApp message into the file store: Graph
// GET /{media-id} gives a URL valid for five minutes, and GET on it with the
// access token gives the bytes. A URL that ran out (an answer 404 or 410, or
// Graph's 131052) is asked for again, once per attempt; 5xx and network failures
// are retried by the outbox, other 4xx are final.
func (c *Client) Fetch(ctx context.Context, f connectors.Fetch) ([]connectors.File, error) {
	if c.cfg.Files == nil {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeNoFileStore, Message: "no file store is configured (FIXIT_FILES)"}
	}
	if c.cfg.AccessToken == "" {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeAuth, Message: "WABA_ACCESS_TOKEN is unset: media cannot be downloaded"}
	}
	out := make([]connectors.File, 0, len(f.Items))
	for _, it := range f.Items {
		file, err := c.fetchOne(ctx, f.Event, it)
		if err != nil {
			return nil, err
		}
		out = append(out, file)
	}
	return out, nil
}

func (c *Client) fetchOne(ctx context.Context, seq int64, it connectors.FetchItem) (connectors.File, error) {
	log := c.log.With("event_id", seq, "media_kind", it.Kind)
	var lastErr *connectors.Error
	for try := 0; try < 2; try++ {
		info, err := c.mediaInfo(ctx, it.Ref)
		if err != nil {
			return connectors.File{}, err
		}
		size, _ := strconv.ParseInt(info.FileSize, 10, 64)
		sha := it.SHA256
		if sha == "" {
			sha = info.SHA256
		}
		file, err := c.download(ctx, info.URL, connectors.Put{Event: seq, Name: it.Name, MIME: firstNonEmpty(info.MIMEType, it.MIME),
			Kind: it.Kind, Size: size, SHA256: sha})
		if err == nil {
			log.Info("waba media downloaded", "file_id", file.ID, "size", file.Size)
			return file, nil
		}
		ce := connectors.AsError("waba", err)
		if ce.Code != connectors.CodeURLExpired {
			return connectors.File{}, ce
		}
		lastErr = ce
		log.Info("waba media URL expired; asking for a new one")
	}
	lastErr.Retryable = true
	return connectors.File{}, lastErr
}

// mediaInfo asks Graph where a media id's file is.
func (c *Client) mediaInfo(ctx context.Context, id string) (*mediaInfo, error) {
	if id == "" {
		return nil, badParams("the message has no media id")
	}
	raw, err := c.do(ctx, http.MethodGet, c.cfg.BaseURL+"/"+url.PathEscape(id), nil, "", "get media url")
	if err != nil {
		return nil, err
	}
	var info mediaInfo
	if err := json.Unmarshal(raw, &info); err != nil || info.URL == "" {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeServer, Retryable: true,
			Message: "graph api answered the media url request without a url"}
	}
	return &info, nil
}

// download streams the file at u (with the access token) into the file store.
func (c *Client) download(ctx context.Context, u string, p connectors.Put) (connectors.File, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return connectors.File{}, badParams("the media url is not a url")
	}
	hreq.Header.Set("Authorization", "Bearer "+c.cfg.AccessToken)
	resp, err := c.cfg.HTTP.Do(hreq)
	if err != nil {
		return connectors.File{}, &connectors.Error{Connector: "waba", Code: connectors.CodeNetwork, Retryable: true,
			Message: c.redact("download media: " + stripURL(err.Error(), u))}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		e := c.graphError(resp.StatusCode, connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), raw)
		if e.APICode == 131052 || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone ||
			(resp.StatusCode == http.StatusForbidden && e.APICode == 0) {
			e.Code, e.Retryable = connectors.CodeURLExpired, false
		}
		return connectors.File{}, e
	}
	if p.MIME == "" {
		p.MIME = resp.Header.Get("Content-Type")
	}
	return c.cfg.Files.Save(ctx, p, resp.Body)
}

// stripURL keeps a download URL (which may carry a signature) out of an error.
func stripURL(s, u string) string { return strings.ReplaceAll(s, u, "<media url>") }

// do makes one Graph call and returns the body of a 2xx answer; others are typed errors.
func (c *Client) do(ctx context.Context, method, u string, body io.Reader, contentType, what string) ([]byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build waba request: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+c.cfg.AccessToken)
	hreq.Header.Set("Accept", "application/json")
	if contentType != "" {
		hreq.Header.Set("Content-Type", contentType)
	}
	resp, err := c.cfg.HTTP.Do(hreq)
	if err != nil {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeNetwork, Retryable: true,
			Message: c.redact(what + ": " + err.Error()), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeNetwork, Retryable: true,
			Status: resp.StatusCode, Message: c.redact("read response: " + err.Error()), Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.graphError(resp.StatusCode, connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), raw)
	}
	return raw, nil
}

// upload sends a stored file to Graph (POST /{phone-number-id}/media of the business
// number, multipart: messaging_product, type and file) and returns its media id.
func (c *Client) upload(ctx context.Context, number, id string) (string, error) {
	if c.cfg.Files == nil {
		return "", &connectors.Error{Connector: "waba", Code: connectors.CodeNoFileStore, Message: "no file store is configured (FIXIT_FILES)"}
	}
	f, content, err := c.cfg.Files.Open(ctx, id)
	if err != nil {
		return "", err
	}
	defer content.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := writeUpload(mw, f, content)
		pw.CloseWithError(err)
	}()
	raw, err := c.do(ctx, http.MethodPost, c.cfg.BaseURL+"/"+url.PathEscape(number)+"/media", pr,
		mw.FormDataContentType(), "upload media")
	pr.Close()
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &out) != nil || out.ID == "" {
		return "", &connectors.Error{Connector: "waba", Code: connectors.CodeServer, Retryable: true,
			Message: "graph api answered the upload without a media id"}
	}
	return out.ID, nil
}

func writeUpload(mw *multipart.Writer, f connectors.File, content io.Reader) error {
	if err := mw.WriteField("messaging_product", "whatsapp"); err != nil {
		return err
	}
	if err := mw.WriteField("type", f.MIME); err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": f.Name}))
	h.Set("Content-Type", f.MIME)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, content); err != nil {
		return err
	}
	return mw.Close()
}

// buildMedia makes the media message of a send with a file: a stored file is
// uploaded first (its media id filled in by Execute), an https URL goes as a link.
// The text is the caption (audio takes none).
func buildMedia(to string, p map[string]any, c *cuts) (*outMessage, string, error) {
	refs, err := connectors.FileRefs("file", p["file"])
	if err != nil {
		return nil, "", badParams(err.(*connectors.Error).Message)
	}
	if len(refs) != 1 {
		return nil, "", badParams(fmt.Sprintf("file: give one file, got %d", len(refs)))
	}
	if p["buttons"] != nil || p["list"] != nil {
		return nil, "", badParams("a file cannot be sent with buttons or a list")
	}
	ref := refs[0]
	m := &outMedia{Filename: paramString(p["filename"])}
	kind := "document"
	if ref.URL != "" {
		m.Link = ref.URL
		if u, err := url.Parse(ref.URL); err == nil {
			kind = connectors.MediaKindOf(mime.TypeByExtension(path.Ext(u.Path)))
			if m.Filename == "" && kind == "document" {
				m.Filename = path.Base(u.Path)
			}
		}
	} else {
		kind = connectors.MediaKindOf(ref.File.MIME)
		if ref.File.Size > mediaCaps[kind] {
			kind = "document"
		}
		m.ID = uploadMarker + ref.File.ID
		if m.Filename == "" && kind == "document" {
			m.Filename = ref.File.Name
		}
	}
	if kind != "document" {
		m.Filename = ""
	}
	if text := paramString(p["text"]); text != "" && kind != "audio" {
		m.Caption, _ = c.fit("text", text, false, maxInteractiveLen)
	}
	msg := newMessage(to, kind, func(out *outMessage) {
		switch kind {
		case "image":
			out.Image = m
		case "video":
			out.Video = m
		case "audio":
			out.Audio = m
		default:
			out.Document = m
		}
	})
	return msg, "media_" + kind, nil
}

// uploadMarker prefixes the id of a stored file in a media object until Execute
// has uploaded it and put the media id in its place.
const uploadMarker = "upload:"

// media returns the media object of msg, if it has one.
func (m *outMessage) media() *outMedia {
	for _, x := range []*outMedia{m.Image, m.Video, m.Audio, m.Document} {
		if x != nil {
			return x
		}
	}
	return nil
}

// uploadFiles replaces the stored file of msg's media by the media id Graph gives
// it, uploaded to the business number the message leaves from.
func (c *Client) uploadFiles(ctx context.Context, number string, msg *outMessage) error {
	m := msg.media()
	if m == nil || !strings.HasPrefix(m.ID, uploadMarker) {
		return nil
	}
	id, err := c.upload(ctx, number, strings.TrimPrefix(m.ID, uploadMarker))
	if err != nil {
		return err
	}
	m.ID = id
	return nil
}
