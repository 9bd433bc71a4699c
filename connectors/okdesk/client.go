package okdesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
)

// Connector is the connector name in errors and logs.
const Connector = "okdesk"

// Action kinds performed by Client.
const (
	KindFindContact         = "okdesk.find_contact"
	KindCreateContact       = "okdesk.create_contact"
	KindFindOrCreateContact = "okdesk.find_or_create_contact"
	KindCreateIssue         = "okdesk.create_issue"
	KindComment             = "okdesk.comment"
	KindChangeStatus        = "okdesk.change_status"
	KindGetIssue            = "okdesk.get_issue"
)

// DryRunID is the id a dry-run client answers in place of the ids Okdesk would assign.
const DryRunID = "dry-run"

// CodeBadResponse is the error code of a 2xx answer that cannot be understood (for
// example a created issue without an id). It is not retried: the write may have happened.
const CodeBadResponse = "bad_response"

const (
	defaultTimeout   = 30 * time.Second
	maxResponseBytes = 4 << 20 // Okdesk answers are small; anything bigger is not an answer
	maxMessageBytes  = 512
)

// Config configures a Client. A Config with BaseURL or APIToken empty gives a dry-run
// client, so flows can be tried locally without an Okdesk account.
type Config struct {
	// BaseURL is the API root, OKDESK_API_URL, e.g. "https://acme.okdesk.ru/api/v1"; a
	// URL without a path gets "/api/v1". Okdesk also runs on customers' own domains, so
	// any http(s) URL is accepted.
	BaseURL string
	// APIToken is OKDESK_API_TOKEN, sent as the api_token query parameter.
	APIToken string
	// HTTP sends the requests; nil means a client with a 30-second timeout.
	HTTP *http.Client
	// Logger receives debug lines per request and an info line per dry run; nil discards.
	Logger *slog.Logger
	// CommentAuthorID is the employee id that okdesk.comment posts as when the action
	// gives no author_id (Okdesk requires one). Empty leaves author_id out.
	CommentAuthorID string
	// Files gives the files create_issue and comment upload, and keeps the
	// attachments fetched from Okdesk; nil: neither.
	Files connectors.Files
}

// Client performs the okdesk.* actions over the Okdesk REST API. It is safe for
// concurrent use.
type Client struct {
	base     *url.URL // nil in dry-run mode
	token    string
	http     *http.Client
	log      *slog.Logger
	authorID string
	files    connectors.Files
}

// New returns a Client for cfg. It fails when BaseURL is set but is not an absolute
// http(s) URL.
func New(cfg Config) (*Client, error) {
	c := &Client{token: cfg.APIToken, http: cfg.HTTP, log: cfg.Logger, authorID: strings.TrimSpace(cfg.CommentAuthorID), files: cfg.Files}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("okdesk: base url %q is not an absolute http(s) url", cfg.BaseURL)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		if u.Path == "" {
			u.Path = "/api/v1" // "https://acme.okdesk.ru" means the account's API root
		}
		u.RawPath, u.RawQuery, u.Fragment = "", "", ""
		c.base = u
	}
	if c.authorID != "" {
		if _, err := idParam(map[string]any{"author_id": c.authorID}, "author_id"); err != nil {
			return nil, fmt.Errorf("okdesk: comment author id %q is not an okdesk id", cfg.CommentAuthorID)
		}
	}
	return c, nil
}

// DryRun reports whether the client only records what it would send.
func (c *Client) DryRun() bool { return c.base == nil || c.token == "" }

// Kinds lists the action kinds this client performs.
func (c *Client) Kinds() []string { return connectors.KindsOf(Actions) }

// Actions describes the okdesk.* actions: their parameters are what Execute reads.
func (c *Client) Actions() []connectors.ActionSpec { return Actions }

// Actions are the okdesk.* actions a flow may write.
var Actions = []connectors.ActionSpec{
	{Name: KindFindContact, Doc: "Find an Okdesk contact by phone. Result: found, contact_id.", Params: []connectors.Param{
		{Name: "phone", Type: connectors.TypeTemplate, Required: true, Doc: "Phone number in any format.", Example: "+7 916 123-45-67"},
	}},
	{Name: KindCreateContact, Doc: "Create an Okdesk contact. Result: contact_id.", Params: []connectors.Param{
		{Name: "phone", Type: connectors.TypeTemplate, Required: true, Doc: "Phone number.", Example: "+7 916 123-45-67"},
		{Name: "first_name", Type: connectors.TypeTemplate, Required: true, Doc: "First name.", Example: "Анна-first"},
		{Name: "last_name", Type: connectors.TypeTemplate, Doc: "Last name.", Example: "Иванова-last"},
	}},
	{Name: KindFindOrCreateContact, Doc: "Find the contact by phone, create it when missing. Result: contact_id, created.", Params: []connectors.Param{
		{Name: "phone", Type: connectors.TypeTemplate, Required: true, Doc: "Phone number.", Example: "+7 916 123-45-67"},
		{Name: "name", Type: connectors.TypeTemplate, Doc: "Name for a created contact.", Example: "Анна Иванова"},
	}},
	{Name: KindCreateIssue, Doc: "Create an Okdesk issue. Result: id (the issue number), contact_id.", Params: []connectors.Param{
		{Name: "title", Type: connectors.TypeTemplate, Required: true, Doc: "Issue title.", Example: "WhatsApp: title-example"},
		{Name: "description", Type: connectors.TypeTemplate, Doc: "Issue description.", Example: "description-example"},
		{Name: "contact_id", Type: connectors.TypeTemplate, Doc: "Okdesk contact id.", Example: "4242"},
		{Name: "phone", Type: connectors.TypeTemplate, Doc: "Find or create the contact by this phone when contact_id is absent.", Example: "+7 916 123-45-67"},
		{Name: "name", Type: connectors.TypeTemplate, Doc: "Name of a contact created by phone.", Example: "Анна"},
		{Name: "type", Type: connectors.TypeTemplate, Doc: "Issue type code.", Example: "service_type"},
		{Name: "priority", Type: connectors.TypeTemplate, Doc: "Priority code.", Example: "high_prio"},
		{Name: "company_id", Type: connectors.TypeTemplate, Doc: "Okdesk company id.", Example: "77"},
		{Name: "custom_parameters", Type: connectors.TypeAny, Doc: "Additional attributes: a mapping of attribute code → value.", Example: map[string]any{"serial": "SN-example"}},
		{Name: "files", Type: connectors.TypeFiles, Doc: "Stored files to attach (`[\"${event.data.file}\"]`, or a variable holding files), uploaded as the issue's attachments.", Example: []any{map[string]any{"id": "f0", "name": "photo-example.jpg", "mime": "image/jpeg"}}},
	}},
	{Name: KindComment, Doc: "Add a comment to an Okdesk issue. Result: id.", Params: []connectors.Param{
		{Name: "issue_id", Type: connectors.TypeTemplate, Required: true, Doc: "Issue id.", Example: "1542"},
		{Name: "content", Type: connectors.TypeTemplate, Required: true, Doc: "Comment text.", Example: "content-example"},
		{Name: "public", Type: connectors.TypeBool, Doc: "Visible to the customer in Okdesk (default true).", Example: false},
		{Name: "author_id", Type: connectors.TypeTemplate, Doc: "Employee id of the author.", Example: "31"},
		{Name: "author_type", Type: connectors.TypeString, Enum: []string{"employee", "contact"}, Doc: "Who the author is (default: Okdesk's default, an employee).", Example: "employee"},
		{Name: "format", Type: connectors.TypeString, Enum: []string{"text", "html"}, Doc: "text (default: line breaks kept, markup escaped) or html.", Example: "text"},
		{Name: "files", Type: connectors.TypeFiles, Doc: "Stored files to attach to the comment (`[\"${event.data.file}\"]`, or a variable holding files).", Example: []any{map[string]any{"id": "f1", "name": "scan-example.pdf", "mime": "application/pdf"}}},
	}},
	{Name: KindChangeStatus, Doc: "Change an Okdesk issue's status.", Params: []connectors.Param{
		{Name: "issue_id", Type: connectors.TypeTemplate, Required: true, Doc: "Issue id.", Example: "1542"},
		{Name: "status", Type: connectors.TypeTemplate, Required: true, Doc: "Status code, e.g. in_progress, completed.", Example: "status_example"},
		{Name: "comment", Type: connectors.TypeTemplate, Doc: "Comment to the status change.", Example: "comment-example"},
		{Name: "comment_public", Type: connectors.TypeBool, Doc: "Whether that comment is visible to the customer (default false).", Example: true},
		{Name: "delay_to", Type: connectors.TypeTemplate, Doc: "For a delayed status: until when (Okdesk's date and time format).", Example: "2026-12-01 10:00"},
		{Name: "skip_webhooks", Type: connectors.TypeBool, Doc: "Do not send Okdesk's webhooks about this change (default false).", Example: true},
	}},
	{Name: KindGetIssue, Doc: "Read an Okdesk issue. Result: the issue's fields.", Params: []connectors.Param{
		{Name: "issue_id", Type: connectors.TypeTemplate, Required: true, Doc: "Issue id.", Example: "1542"},
	}},
}

// Execute performs one okdesk.* action. Errors are *connectors.Error, possibly wrapped
// with what was being done, so the outbox can tell retryable failures from final ones.
func (c *Client) Execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	x := &exchange{c: c, now: req.Now, kind: req.Kind, outbox: req.ID, attempt: req.Attempt}
	if x.now.IsZero() {
		x.now = time.Now()
	}
	p := req.Params
	if p == nil {
		p = map[string]any{}
	}
	var (
		data map[string]any
		err  error
	)
	switch req.Kind {
	case KindFindContact:
		data, err = c.findContactAction(ctx, x, p)
	case KindCreateContact:
		data, err = c.createContactAction(ctx, x, p)
	case KindFindOrCreateContact:
		data, err = c.findOrCreateContactAction(ctx, x, p)
	case KindCreateIssue:
		data, err = c.createIssueAction(ctx, x, p)
	case KindComment:
		data, err = c.commentAction(ctx, x, p)
	case KindChangeStatus:
		data, err = c.changeStatusAction(ctx, x, p)
	case KindGetIssue:
		data, err = c.getIssueAction(ctx, x, p)
	default:
		err = &connectors.Error{Connector: Connector, Code: connectors.CodeUnsupported,
			Message: fmt.Sprintf("no okdesk action %q", req.Kind)}
	}
	if err != nil {
		return connectors.Result{}, err
	}
	if !c.DryRun() {
		return connectors.Result{Data: data}, nil
	}
	data["dry_run"] = true
	if n := len(x.dry); n > 0 {
		data["request"] = x.dry[n-1]
		reqs := make([]any, n)
		for i, r := range x.dry {
			reqs[i] = r
		}
		data["requests"] = reqs
	}
	return connectors.Result{Data: data, DryRun: true}, nil
}

// exchange carries the state of one Execute call.
type exchange struct {
	c       *Client
	now     time.Time
	kind    string
	outbox  string
	attempt int
	dry     []map[string]any // requests a dry-run client would have sent
}

// do sends one request and decodes the JSON answer (numbers as json.Number). path is
// relative to the base URL, query never holds the token (do adds it), body is
// marshalled as JSON when not nil. Failures are *connectors.Error.
func (x *exchange) do(ctx context.Context, method, path string, query url.Values, body map[string]any) (any, error) {
	c := x.c
	if c.DryRun() {
		rec := map[string]any{"method": method, "path": path}
		if len(query) > 0 {
			q := make(map[string]any, len(query))
			for k, v := range query {
				q[k] = v[0]
			}
			rec["query"] = q
		}
		if body != nil {
			rec["body"] = body
		}
		x.dry = append(x.dry, rec)
		c.log.InfoContext(ctx, "okdesk dry-run: credentials unset, request not sent",
			"kind", x.kind, "outbox_id", x.outbox, "method", method, "path", path)
		return map[string]any{"id": DryRunID}, nil
	}

	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, &connectors.Error{Connector: Connector, Code: connectors.CodeBadParams,
				Message: fmt.Sprintf("encode %s %s body: %v", method, path, err)}
		}
		rd, contentType = bytes.NewReader(b), "application/json; charset=utf-8"
	}
	return x.send(ctx, method, path, query, rd, contentType)
}

// send makes one request with a ready body (nil: none) and decodes the JSON answer;
// see do.
func (x *exchange) send(ctx context.Context, method, path string, query url.Values, rd io.Reader, contentType string) (any, error) {
	c := x.c
	u := *c.base
	u.Path = c.base.Path + path
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("api_token", c.token)
	u.RawQuery = q.Encode() // Encode escapes '+' as %2B, as Okdesk requires for phones

	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, &connectors.Error{Connector: Connector, Code: connectors.CodeBadParams,
			Message: fmt.Sprintf("build %s %s request: %s", method, path, c.redact(err.Error()))}
	}
	hreq.Header.Set("Accept", "application/json")
	if contentType != "" {
		hreq.Header.Set("Content-Type", contentType)
	}

	start := time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, c.networkError(method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	c.log.DebugContext(ctx, "okdesk request", "kind", x.kind, "outbox_id", x.outbox,
		"method", method, "path", path, "status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return nil, c.networkError(method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		retryAfter := connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), x.now)
		msg := fmt.Sprintf("%s %s: %s", method, path, c.redact(errorMessage(raw, resp.Status)))
		return nil, connectors.HTTPError(Connector, resp.StatusCode, retryAfter, msg)
	}
	if len(raw) > maxResponseBytes {
		return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("%s %s: answer larger than %d bytes", method, path, maxResponseBytes)}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("%s %s: decode answer: %v", method, path, err)}
	}
	return out, nil
}

// networkError turns a transport failure into a retryable error that carries neither the
// token nor the query string: *url.Error prints the full URL, so it is rebuilt with a
// redacted one.
func (c *Client) networkError(method, path string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: c.redactURL(ue.URL), Err: connectors.RedactedError{Msg: c.redact(ue.Err.Error()), Err: ue.Err}}
	}
	return &connectors.Error{Connector: Connector, Code: connectors.CodeNetwork, Retryable: true,
		Message: fmt.Sprintf("%s %s: %s", method, path, c.redact(err.Error())), Err: err}
}

// redact removes the token from s (defence in depth: no message we build carries it).
func (c *Client) redact(s string) string { return connectors.Redact(s, c.token) }

// redactURL drops the query string (it holds api_token) from a URL.
func (c *Client) redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable url]"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return c.redact(u.String())
}

// errorMessage extracts Okdesk's message from an error body: {"errors": ...} where the
// value is a string, a list, or a Rails-style map of field → messages (nested for nested
// params), flattened to "field: message; page.size: message". Other bodies are quoted,
// cut to 512 bytes; an empty body gives the HTTP status text.
func errorMessage(raw []byte, status string) string {
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err == nil {
		var parts []string
		for _, k := range []string{"errors", "error", "message"} {
			if v, ok := body[k]; ok {
				flattenErrors("", v, &parts)
			}
		}
		if len(parts) > 0 {
			return connectors.Truncate(strings.Join(parts, "; "), maxMessageBytes)
		}
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(raw), "\uFFFD"))
	if s == "" {
		return status
	}
	return status + ": " + connectors.Truncate(s, maxMessageBytes)
}

func flattenErrors(prefix string, v any, out *[]string) {
	switch x := v.(type) {
	case string:
		x = strings.TrimSpace(x)
		if x == "" {
			return
		}
		if prefix != "" {
			*out = append(*out, prefix+": "+x)
		} else {
			*out = append(*out, x)
		}
	case []any:
		for _, e := range x {
			flattenErrors(prefix, e, out)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flattenErrors(p, x[k], out)
		}
	case nil:
	default:
		flattenErrors(prefix, fmt.Sprint(x), out)
	}
}
