package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/fixit-exchange/fixit/connectors"
)

// maxCaptionRunes is the longest caption of a photo or document.
const maxCaptionRunes = 1024

// maxDownload is the largest file the Bot API lets a bot download (getFile).
const maxDownload = 20 << 20

// Source returns "telegram": the client fetches the files of Telegram messages.
func (c *Client) Source() string { return connectorName }

var _ connectors.Fetcher = (*Client)(nil)

// Fetch downloads the photo or document of a Telegram message into the file
// store: getFile gives its file_path, and GET {base}/file/bot<token>/<file_path>
// its bytes. The Bot API serves files up to 20 MB.
func (c *Client) Fetch(ctx context.Context, f connectors.Fetch) ([]connectors.File, error) {
	if c.files == nil {
		return nil, &connectors.Error{Connector: connectorName, Code: connectors.CodeNoFileStore, Message: "no file store is configured (FIXIT_FILES)"}
	}
	if c.token == "" {
		return nil, &connectors.Error{Connector: connectorName, Code: connectors.CodeAuth, Message: "TELEGRAM_BOT_TOKEN is unset: files cannot be downloaded"}
	}
	out := make([]connectors.File, 0, len(f.Items))
	for _, it := range f.Items {
		if it.Size > maxDownload {
			return nil, &connectors.Error{Connector: connectorName, Code: connectors.CodeTooLarge,
				Message: fmt.Sprintf("the %s is larger than the 20 MB a bot may download", it.Kind)}
		}
		var file struct {
			FilePath string `json:"file_path"`
			FileSize int64  `json:"file_size"`
		}
		req := connectors.Request{ID: fmt.Sprint(f.Event)}
		if err := c.call(ctx, req, "getFile", map[string]string{"file_id": it.Ref}, &file); err != nil {
			return nil, err
		}
		if file.FilePath == "" {
			return nil, &connectors.Error{Connector: connectorName, Code: connectors.CodeTooLarge,
				Message: "telegram gave no file_path: the file is too large for a bot to download"}
		}
		saved, err := c.download(ctx, file.FilePath, connectors.Put{Event: f.Event, Name: it.Name, MIME: it.MIME, Kind: it.Kind,
			Size: max(it.Size, file.FileSize)})
		if err != nil {
			return nil, err
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "telegram file downloaded", slog.Int64("event_id", f.Event),
			slog.String("file_id", saved.ID), slog.Int64("size", saved.Size))
		out = append(out, saved)
	}
	return out, nil
}

func (c *Client) download(ctx context.Context, filePath string, p connectors.Put) (connectors.File, error) {
	u := c.base + "/file/bot" + c.token + "/" + strings.TrimLeft(filePath, "/")
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return connectors.File{}, &connectors.Error{Connector: connectorName, Code: connectors.CodeBadParams,
			Message: "getFile gave a file_path that does not fit in a URL"}
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return connectors.File{}, c.transportError("download file", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return connectors.File{}, connectors.HTTPError(connectorName, resp.StatusCode, 0,
			fmt.Sprintf("download file: telegram answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	if p.MIME == "" {
		p.MIME = resp.Header.Get("Content-Type")
	}
	return c.files.Save(ctx, p, resp.Body)
}

// mediaSend is a send with a file: sendPhoto for an image, sendDocument for
// anything else; a stored file is uploaded (multipart), a URL is passed on.
type mediaSend struct {
	method, field string
	ref           connectors.FileRef
	caption       string
	filename      string
}

// buildMedia reads the file of a send.
func buildMedia(params map[string]any) (*mediaSend, error) {
	if params["file"] == nil {
		return nil, nil
	}
	refs, err := connectors.FileRefs("file", params["file"])
	if err != nil {
		return nil, badParams(err.(*connectors.Error).Message)
	}
	if len(refs) != 1 {
		return nil, badParams(fmt.Sprintf("file: give one file, got %d", len(refs)))
	}
	if params["buttons"] != nil || params["list"] != nil {
		return nil, badParams("a file cannot be sent with buttons or a list")
	}
	m := &mediaSend{method: "sendDocument", field: "document", ref: refs[0]}
	m.caption, _ = stringParam(params, "text", false)
	m.caption, _ = connectors.TruncateChars(m.caption, maxCaptionRunes)
	m.filename, _ = stringParam(params, "filename", false)
	kind := ""
	if m.ref.URL != "" {
		if u, err := url.Parse(m.ref.URL); err == nil {
			kind = connectors.MediaKindOf(mime.TypeByExtension(pathExt(u.Path)))
		}
	} else {
		kind = connectors.MediaKindOf(m.ref.File.MIME)
		if m.ref.File.Size > 10<<20 { // sendPhoto takes photos up to 10 MB
			kind = "document"
		}
	}
	if kind == "image" {
		m.method, m.field = "sendPhoto", "photo"
	}
	return m, nil
}

func pathExt(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 && !strings.Contains(p[i:], "/") {
		return p[i:]
	}
	return ""
}

// sendMedia sends m to chat.
func (c *Client) sendMedia(ctx context.Context, req connectors.Request, chat string, m *mediaSend) (connectors.Result, error) {
	via := strings.TrimPrefix(strings.ToLower(m.method), "send")
	body := map[string]any{"chat_id": chatIDValue(chat), m.field: m.ref.URL}
	if m.caption != "" {
		body["caption"] = m.caption
	}
	if m.ref.URL == "" {
		body[m.field] = "attach:" + m.ref.File.ID
	}
	if c.token == "" {
		res, err := c.dryRun(ctx, req, m.method, body)
		if err == nil {
			res.Data["via"] = via
		}
		return res, err
	}
	var sent struct {
		MessageID json.Number `json:"message_id"`
	}
	var err error
	if m.ref.URL != "" {
		err = c.call(ctx, req, m.method, body, &sent)
	} else {
		err = c.upload(ctx, req, chat, m, &sent)
	}
	if err != nil {
		return connectors.Result{}, err
	}
	return connectors.Result{Data: map[string]any{"message_id": sent.MessageID.String(), "chat_id": chat, "via": via}}, nil
}

// upload posts a stored file as multipart/form-data.
func (c *Client) upload(ctx context.Context, req connectors.Request, chat string, m *mediaSend, out any) error {
	if c.files == nil {
		return &connectors.Error{Connector: connectorName, Code: connectors.CodeNoFileStore, Message: "no file store is configured (FIXIT_FILES)"}
	}
	f, content, err := c.files.Open(ctx, m.ref.File.ID)
	if err != nil {
		return err
	}
	defer content.Close()
	name := m.filename
	if name == "" {
		name = f.Name
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(func() error {
			if err := mw.WriteField("chat_id", chat); err != nil {
				return err
			}
			if m.caption != "" {
				if err := mw.WriteField("caption", m.caption); err != nil {
					return err
				}
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": m.field, "filename": name}))
			h.Set("Content-Type", f.MIME)
			w, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, content); err != nil {
				return err
			}
			return mw.Close()
		}())
	}()
	defer pr.Close()
	return c.callBody(ctx, req, m.method, pr, mw.FormDataContentType(), out)
}
