package okdesk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"

	"github.com/fixit-exchange/fixit/connectors"
)

// Source returns "okdesk": the client fetches the public attachments of Okdesk
// events (new_files, comments).
func (c *Client) Source() string { return Connector }

var _ connectors.Fetcher = (*Client)(nil)

// filesParam reads the files parameter of okdesk.create_issue and okdesk.comment:
// stored files only (Okdesk takes uploads, not links).
func filesParam(p map[string]any) ([]connectors.File, error) {
	refs, err := connectors.FileRefs("files", p["files"])
	if err != nil {
		return nil, badParam("files", err.(*connectors.Error).Message)
	}
	out := make([]connectors.File, 0, len(refs))
	for _, r := range refs {
		if r.URL != "" {
			return nil, badParam("files", "okdesk takes stored files (${event.data.file}), not links")
		}
		out = append(out, r.File)
	}
	return out, nil
}

// formFile is a file part of a multipart request: the field it goes in and the
// stored file.
type formFile struct {
	field string
	file  connectors.File
}

// doForm sends body as multipart/form-data in Rails' nested field names
// (issue[title], issue[custom_parameters][code], …) with the stored files as file
// parts, streamed from the file store. With no files it is do.
func (x *exchange) doForm(ctx context.Context, method, path string, body map[string]any, files []formFile) (any, error) {
	if len(files) == 0 {
		return x.do(ctx, method, path, nil, body)
	}
	c := x.c
	if c.DryRun() {
		names := make([]any, len(files))
		for i, f := range files {
			names[i] = map[string]any{"field": f.field, "file": f.file.ID, "name": f.file.Name}
		}
		x.dry = append(x.dry, map[string]any{"method": method, "path": path, "body": body, "files": names})
		c.log.InfoContext(ctx, "okdesk dry-run: credentials unset, request not sent",
			"kind", x.kind, "outbox_id", x.outbox, "method", method, "path", path, "files", len(files))
		return map[string]any{"id": DryRunID}, nil
	}
	if c.files == nil {
		return nil, &connectors.Error{Connector: Connector, Code: connectors.CodeNoFileStore, Message: "no file store is configured (FIXIT_FILES)"}
	}
	type opened struct {
		f       connectors.File
		content io.ReadCloser
	}
	var open []opened
	defer func() {
		for _, o := range open {
			o.content.Close()
		}
	}()
	for _, f := range files {
		info, content, err := c.files.Open(ctx, f.file.ID)
		if err != nil {
			return nil, err
		}
		open = append(open, opened{info, content})
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(func() error {
			if err := writeFields(mw, "", body); err != nil {
				return err
			}
			for i, o := range open {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": files[i].field, "filename": o.f.Name}))
				h.Set("Content-Type", o.f.MIME)
				w, err := mw.CreatePart(h)
				if err != nil {
					return err
				}
				if _, err := io.Copy(w, o.content); err != nil {
					return err
				}
			}
			return mw.Close()
		}())
	}()
	defer pr.Close()
	return x.send(ctx, method, path, nil, pr, mw.FormDataContentType())
}

// writeFields writes v as form fields named in Rails' nested style under prefix.
func writeFields(mw *multipart.Writer, prefix string, v any) error {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			name := k
			if prefix != "" {
				name = prefix + "[" + k + "]"
			}
			if err := writeFields(mw, name, x[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for _, e := range x {
			if err := writeFields(mw, prefix+"[]", e); err != nil {
				return err
			}
		}
		return nil
	case nil:
		return mw.WriteField(prefix, "")
	case string:
		return mw.WriteField(prefix, x)
	case bool:
		return mw.WriteField(prefix, strconv.FormatBool(x))
	case int64:
		return mw.WriteField(prefix, strconv.FormatInt(x, 10))
	case float64:
		return mw.WriteField(prefix, strconv.FormatFloat(x, 'f', -1, 64))
	}
	return mw.WriteField(prefix, fmt.Sprint(v))
}

// Fetch downloads public attachments of an Okdesk issue into the file store: GET
// /issues/{issue}/attachments/{id} describes one, with a link to its content
// (attachment_url), which is then read. The api_token goes only to the API's own
// host, never to the storage the link may point at.
func (c *Client) Fetch(ctx context.Context, f connectors.Fetch) ([]connectors.File, error) {
	if c.files == nil {
		return nil, &connectors.Error{Connector: Connector, Code: connectors.CodeNoFileStore, Message: "no file store is configured (FIXIT_FILES)"}
	}
	if c.DryRun() {
		return nil, &connectors.Error{Connector: Connector, Code: connectors.CodeAuth, Message: "OKDESK_API_URL or OKDESK_API_TOKEN is unset: attachments cannot be downloaded"}
	}
	x := &exchange{c: c, kind: connectors.KindFetch, outbox: f.Action}
	out := make([]connectors.File, 0, len(f.Items))
	for _, it := range f.Items {
		if it.Issue == "" || it.Ref == "" {
			return nil, badParam("items", "an attachment needs its issue and id")
		}
		path := "/issues/" + url.PathEscape(it.Issue) + "/attachments/" + url.PathEscape(it.Ref)
		v, err := x.do(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("read attachment %s of issue %s: %w", it.Ref, it.Issue, err)
		}
		a, _ := v.(map[string]any)
		link, _ := a["attachment_url"].(string)
		if link == "" {
			return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse,
				Message: fmt.Sprintf("attachment %s of issue %s: the answer has no attachment_url", it.Ref, it.Issue)}
		}
		name := it.Name
		if n, _ := a["attachment_file_name"].(string); n != "" {
			name = n
		}
		file, err := c.download(ctx, link, connectors.Put{Event: f.Event, Name: name, Kind: it.Kind, Size: it.Size})
		if err != nil {
			return nil, err
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "okdesk attachment downloaded", slog.Int64("event_id", f.Event),
			slog.String("file_id", file.ID), slog.Int64("size", file.Size))
		out = append(out, file)
	}
	return out, nil
}

// download streams the content at link into the file store; a link on the API's
// own host gets the api_token.
func (c *Client) download(ctx context.Context, link string, p connectors.Put) (connectors.File, error) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return connectors.File{}, &connectors.Error{Connector: Connector, Code: CodeBadResponse, Message: "the attachment_url is not an http(s) URL"}
	}
	if u.Host == c.base.Host {
		q := u.Query()
		q.Set("api_token", c.token)
		u.RawQuery = q.Encode()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return connectors.File{}, &connectors.Error{Connector: Connector, Code: CodeBadResponse, Message: "the attachment_url is not usable"}
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return connectors.File{}, c.networkError(http.MethodGet, "attachment content", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return connectors.File{}, connectors.HTTPError(Connector, resp.StatusCode, 0,
			fmt.Sprintf("download attachment: answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	p.MIME = resp.Header.Get("Content-Type")
	return c.files.Save(ctx, p, resp.Body)
}
