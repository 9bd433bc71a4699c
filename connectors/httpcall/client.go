package httpcall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
)

// Kind is the action kind performed by Client.
const Kind = "http"

// Connector is the connector name in errors and logs.
const Connector = "http"

const (
	// DefaultTimeout bounds a call whose action sets no timeout.
	DefaultTimeout = 10 * time.Second
	// MaxTimeout is the longest timeout an action may ask for: an outbox worker must
	// not be held for longer.
	MaxTimeout = 2 * time.Minute
	// MaxBodyBytes is how much of a response body is read.
	MaxBodyBytes = 1 << 20
	// maxMessageBytes is how much of an error response body goes into the error.
	maxMessageBytes = 512
)

// Config configures a Client.
type Config struct {
	// HTTP sends the requests; nil means a new http.Client. Per-call timeouts come from
	// the action (a context deadline), so HTTP needs no Timeout of its own.
	HTTP *http.Client
	// Logger receives one debug line per call (method, host, path, status); nil discards.
	Logger *slog.Logger
	// DryRun checks and records each call without making it: the answer is
	// Result{DryRun: true, Data: {dry_run, method, url, status: 200}}, the URL's
	// query left out (it may hold secrets).
	DryRun bool
}

// Client performs the "http" action. It is safe for concurrent use.
type Client struct {
	http   *http.Client
	log    *slog.Logger
	dryRun bool
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	c := &Client{http: cfg.HTTP, log: cfg.Logger, dryRun: cfg.DryRun}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Kinds lists the action kinds this client performs: "http".
func (c *Client) Kinds() []string { return connectors.KindsOf(Actions) }

// Actions describes the http action: its parameters are what Execute reads.
func (c *Client) Actions() []connectors.ActionSpec { return Actions }

// Actions are the actions of this package a flow may write.
var Actions = []connectors.ActionSpec{
	{Name: Kind, Doc: "A generic HTTP call. Result: status, body, headers.", Params: []connectors.Param{
		{Name: "url", Type: connectors.TypeTemplate, Required: true, Doc: "Absolute http(s) URL.", Example: "https://example.com/url-example"},
		{Name: "method", Type: connectors.TypeString, Enum: []string{"GET", "POST", "PUT", "PATCH", "DELETE"}, Doc: "Method (default GET, or POST with a body).", Example: "POST"},
		{Name: "headers", Type: connectors.TypeTemplates, Doc: "Request headers.", Example: map[string]any{"X-Example": "header-example"}},
		{Name: "query", Type: connectors.TypeTemplates, Doc: "Query parameters.", Example: map[string]any{"q": "query-example"}},
		{Name: "body", Type: connectors.TypeAny, Doc: "Body: a mapping or list is sent as JSON, a string as is.", Example: map[string]any{"a": "body-example"}},
		{Name: "timeout", Type: connectors.TypeDuration, Doc: "Timeout (default 10s).", Example: "5s"},
	}},
}

// call is one validated request.
type call struct {
	method  string
	url     *url.URL
	header  http.Header
	host    string // explicit Host header, if any
	body    []byte
	hasBody bool
	timeout time.Duration
	secrets []string // values to redact from messages
}

// Execute performs one "http" action (see the package documentation for params and
// result). Errors are *connectors.Error.
func (c *Client) Execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	if req.Kind != Kind {
		return connectors.Result{}, &connectors.Error{Connector: Connector, Code: connectors.CodeUnsupported,
			Message: fmt.Sprintf("no http action %q", req.Kind)}
	}
	cl, err := buildCall(req.Params)
	if err != nil {
		return connectors.Result{}, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	target := displayURL(cl.url) // scheme, host and path: the query may hold secrets
	if c.dryRun {
		c.log.InfoContext(ctx, "http action (dry-run)", "outbox_id", req.ID, "dialog_id", req.Dialog.ID, "method", cl.method, "host", cl.url.Host, "path", cl.url.Path)
		return connectors.Result{DryRun: true, Data: map[string]any{"dry_run": true, "method": cl.method, "url": target, "status": 200}}, nil
	}

	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	var rd io.Reader
	if cl.hasBody {
		rd = bytes.NewReader(cl.body)
	}
	hreq, err := http.NewRequestWithContext(ctx, cl.method, cl.url.String(), rd)
	if err != nil {
		return connectors.Result{}, &connectors.Error{Connector: Connector, Code: connectors.CodeBadParams,
			Message: fmt.Sprintf("build %s %s request: %s", cl.method, target, cl.redact(err.Error()))}
	}
	hreq.Header = cl.header
	if cl.host != "" {
		hreq.Host = cl.host
	}

	start := time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
		c.log.DebugContext(ctx, "http action failed", "outbox_id", req.ID, "dialog_id", req.Dialog.ID,
			"method", cl.method, "host", cl.url.Host, "path", cl.url.Path, "duration", time.Since(start))
		return connectors.Result{}, cl.networkError(target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	c.log.DebugContext(ctx, "http action", "outbox_id", req.ID, "dialog_id", req.Dialog.ID,
		"method", cl.method, "host", cl.url.Host, "path", cl.url.Path, "status", resp.StatusCode,
		"duration", time.Since(start))
	if err != nil {
		return connectors.Result{}, cl.networkError(target, fmt.Errorf("read response body: %w", err))
	}
	truncated := len(raw) > MaxBodyBytes
	if truncated {
		raw = raw[:MaxBodyBytes]
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		retryAfter := connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		msg := fmt.Sprintf("%s %s: %s", cl.method, target, resp.Status)
		if s := strings.TrimSpace(strings.ToValidUTF8(string(raw), "\uFFFD")); s != "" {
			msg += ": " + connectors.Truncate(s, maxMessageBytes)
		}
		return connectors.Result{}, connectors.HTTPError(Connector, resp.StatusCode, retryAfter, cl.redact(msg))
	}

	headers := make(map[string]any, len(resp.Header))
	for k, v := range resp.Header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	data := map[string]any{
		"status":  resp.StatusCode,
		"body":    decodeBody(raw, resp.Header.Get("Content-Type"), truncated),
		"headers": headers,
	}
	if truncated {
		data["truncated"] = true
	}
	return connectors.Result{Data: data}, nil
}

// decodeBody decodes a JSON answer (Content-Type application/json or */*+json) into
// plain values and gives anything else, or JSON that does not decode, as text.
func decodeBody(raw []byte, contentType string, truncated bool) any {
	if isJSON(contentType) && !truncated {
		var v any
		if err := json.Unmarshal(raw, &v); err == nil {
			return v
		}
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// buildCall validates the action's params.
func buildCall(p map[string]any) (*call, error) {
	if p == nil {
		p = map[string]any{}
	}
	cl := &call{header: http.Header{}}

	rawURL, err := stringParam(p, "url")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if rawURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, badParam("url", "want an absolute http:// or https:// URL")
	}
	u.Fragment = ""
	cl.url = u
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			cl.secrets = append(cl.secrets, pw)
		}
	}

	if v, ok := p["query"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, badParam("query", fmt.Sprintf("want a map, got %T", v))
		}
		q := u.Query()
		for _, k := range sortedKeys(m) {
			vals, err := stringList(m[k])
			if err != nil {
				return nil, badParam("query", fmt.Sprintf("%q: %v", k, err))
			}
			q.Del(k)
			for _, s := range vals {
				q.Add(k, s)
			}
		}
		u.RawQuery = q.Encode()
	}
	for k, vals := range u.Query() {
		if sensitive(k) {
			cl.secrets = append(cl.secrets, vals...)
		}
	}

	if err := cl.setBody(p); err != nil {
		return nil, err
	}

	if v, ok := p["headers"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, badParam("headers", fmt.Sprintf("want a map, got %T", v))
		}
		for _, k := range sortedKeys(m) {
			name := strings.TrimSpace(k)
			if !validHeaderName(name) {
				return nil, badParam("headers", fmt.Sprintf("%.40q is not a header name", k))
			}
			s, err := scalarString(m[k])
			if err != nil {
				return nil, badParam("headers", fmt.Sprintf("%q: %v", name, err))
			}
			if strings.ContainsAny(s, "\r\n\x00") {
				return nil, badParam("headers", fmt.Sprintf("%q: value holds a line break", name))
			}
			if sensitive(name) && s != "" {
				cl.secrets = append(cl.secrets, s)
				// "Bearer abc": the bare credential must not leak either.
				if _, cred, ok := strings.Cut(s, " "); ok && len(strings.TrimSpace(cred)) >= 4 {
					cl.secrets = append(cl.secrets, strings.TrimSpace(cred))
				}
			}
			if http.CanonicalHeaderKey(name) == "Host" {
				cl.host = s
				continue
			}
			cl.header.Set(name, s)
		}
	}

	method, err := stringParam(p, "method")
	if err != nil {
		return nil, err
	}
	method = strings.ToUpper(strings.TrimSpace(method))
	switch {
	case method == "" && cl.hasBody:
		method = http.MethodPost
	case method == "":
		method = http.MethodGet
	case !validMethod(method):
		return nil, badParam("method", fmt.Sprintf("%.20q is not an HTTP method", method))
	}
	cl.method = method

	cl.timeout, err = timeoutParam(p)
	if err != nil {
		return nil, err
	}
	return cl, nil
}

// setBody encodes the "body" param and sets a default Content-Type (headers may override it).
func (cl *call) setBody(p map[string]any) error {
	v, ok := p["body"]
	if !ok || v == nil {
		return nil
	}
	cl.hasBody = true
	if s, ok := v.(string); ok {
		cl.body = []byte(s)
		cl.header.Set("Content-Type", "text/plain; charset=utf-8")
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return badParam("body", fmt.Sprintf("cannot be encoded as JSON: %v", err))
	}
	cl.body = b
	cl.header.Set("Content-Type", "application/json")
	return nil
}

// networkError is the retryable error of a failed exchange. *url.Error prints the whole
// URL, query included, so it is rebuilt with the displayable one.
func (cl *call) networkError(target string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: target, Err: connectors.RedactedError{Msg: cl.redact(ue.Err.Error()), Err: ue.Err}}
	}
	code, msg := connectors.CodeNetwork, cl.redact(err.Error())
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out: " + msg
	}
	return &connectors.Error{Connector: Connector, Code: code, Retryable: true,
		Message: fmt.Sprintf("%s %s: %s", cl.method, target, msg), Err: err}
}

// redact replaces every secret value in s.
func (cl *call) redact(s string) string { return connectors.Redact(s, cl.secrets...) }

// sensitive reports whether a header or query parameter name carries a credential.
func sensitive(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	for _, w := range []string{"token", "secret", "key", "password", "passwd", "auth", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// displayURL is u without user info and query: safe for messages and logs.
func displayURL(u *url.URL) string {
	d := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return d.String()
}

func timeoutParam(p map[string]any) (time.Duration, error) {
	v, ok := p["timeout"]
	if !ok || v == nil {
		return DefaultTimeout, nil
	}
	var d time.Duration
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return DefaultTimeout, nil
		}
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(x)); err != nil {
			return 0, badParam("timeout", fmt.Sprintf("%.40q is not a duration like \"10s\"", x))
		}
	case float64:
		if math.IsNaN(x) || x > MaxTimeout.Seconds() {
			return 0, badParam("timeout", fmt.Sprintf("at most %s", MaxTimeout))
		}
		d = time.Duration(x * float64(time.Second))
	case int:
		if x > int(MaxTimeout.Seconds()) {
			return 0, badParam("timeout", fmt.Sprintf("at most %s", MaxTimeout))
		}
		d = time.Duration(x) * time.Second
	default:
		return 0, badParam("timeout", fmt.Sprintf("want a duration string, got %T", v))
	}
	if d <= 0 || d > MaxTimeout {
		return 0, badParam("timeout", fmt.Sprintf("want a duration above 0 and at most %s", MaxTimeout))
	}
	return d, nil
}

func badParam(name, reason string) *connectors.Error {
	return &connectors.Error{Connector: Connector, Code: connectors.CodeBadParams,
		Message: fmt.Sprintf("param %q: %s", name, reason)}
}

// stringParam reads an optional string param.
func stringParam(p map[string]any, name string) (string, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badParam(name, fmt.Sprintf("want a string, got %T", v))
	}
	return s, nil
}

// scalarString formats a header or query value: strings, numbers and bools.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errors.New("not a finite number")
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case json.Number:
		return string(x), nil
	default:
		return "", fmt.Errorf("want a string, number or bool, got %T", v)
	}
}

// stringList formats a query value: a scalar or a list of scalars.
func stringList(v any) ([]string, error) {
	if l, ok := v.([]any); ok {
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, err := scalarString(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalarString(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validMethod reports whether m is an RFC 9110 token, as http.NewRequest requires.
func validMethod(m string) bool {
	return len(m) <= 20 && validHeaderName(m)
}

// validHeaderName reports whether s is a non-empty RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

var _ connectors.Executor = (*Client)(nil)
