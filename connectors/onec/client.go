package onec

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
)

// ActionRead is the action kind that reads 1C objects over OData.
const ActionRead = "onec.read"

// CodeBadResponse is the error code of a 2xx answer that is not the expected OData
// JSON (typically an HTML page from a web server in front of 1C, i.e. a wrong
// ONEC_ODATA_URL). It is not retried: the next attempt would get the same page.
const CodeBadResponse = "bad_response"

const (
	connectorName    = "onec"
	defaultTimeout   = 60 * time.Second
	maxResponseBytes = 32 << 20
)

// Config configures a Client.
type Config struct {
	// BaseURL is the OData root (ONEC_ODATA_URL), e.g.
	// http://host/base/odata/standard.odata; empty means dry-run.
	BaseURL string
	// User and Pass are the 1C infobase user's Basic credentials (ONEC_USER,
	// ONEC_PASS); no Authorization header is sent when User is empty.
	User, Pass string
	// HTTP is the client used for requests; one with a 60 s timeout when nil.
	HTTP *http.Client
	// Logger receives debug lines about requests and info lines about dry runs;
	// nothing is logged when nil.
	Logger *slog.Logger
}

// Client reads 1C through its standard OData interface. It is a
// connectors.Executor for ActionRead and is safe for concurrent use.
type Client struct {
	base       string
	user, pass string
	http       *http.Client
	log        *slog.Logger
}

var _ connectors.Executor = (*Client)(nil)

// New returns a Client for cfg. It fails when BaseURL is set but is not an absolute
// http(s) URL without query, or carries credentials (they belong in User and Pass,
// not in a URL that ends up in error messages).
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base != "" {
		u, err := url.Parse(base)
		if err != nil {
			return nil, errors.New("configure 1c odata client: base URL does not parse")
		}
		if u.User != nil {
			return nil, fmt.Errorf("configure 1c odata client: base URL %q carries credentials: use ONEC_USER and ONEC_PASS", u.Redacted())
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("configure 1c odata client: base URL %q must be an absolute http(s) URL without query", u.Redacted())
		}
	}
	c := &Client{base: base, user: cfg.User, pass: cfg.Pass, http: cfg.HTTP, log: cfg.Logger}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Kinds returns the action kinds the client performs.
func (c *Client) Kinds() []string { return connectors.KindsOf(Actions) }

// Actions describes onec.read: its parameters are what Execute reads.
func (c *Client) Actions() []connectors.ActionSpec { return Actions }

// Actions are the onec.* actions a flow may write.
var Actions = []connectors.ActionSpec{
	{Name: ActionRead, Doc: "Read 1C through its standard OData interface. Result: items, count.", Params: []connectors.Param{
		{Name: "object", Type: connectors.TypeTemplate, Required: true, Doc: "OData entity set, e.g. Document_СчетНаОплатуПокупателю.", Example: "Document_Example"},
		{Name: "filter", Type: connectors.TypeTemplate, Doc: "$filter expression.", Example: "Number eq 'filter-example'"},
		{Name: "select", Type: connectors.TypeTemplate, Doc: "$select fields.", Example: "SelectExample"},
		{Name: "orderby", Type: connectors.TypeTemplate, Doc: "$orderby.", Example: "OrderExample desc"},
		{Name: "top", Type: connectors.TypeInt, Doc: "$top.", Example: 7},
		{Name: "expand", Type: connectors.TypeTemplate, Doc: "$expand.", Example: "ExpandExample"},
	}},
}

// Execute performs ActionRead: GET {base}/{object}?$format=json plus $filter,
// $select, $orderby, $top and $expand from the params of the same names.
//
// object is required: an entity set such as "Document_СчетНаОплатуПокупателю", one
// entity ("Catalog_Контрагенты(guid'…')"), or a path below them. select, orderby and
// expand take a string or a list of strings (joined with commas); top a
// non-negative integer. Result.Data is {"items": [...], "count": n}; a single-entity
// path gives its object as the only item.
//
// The path keeps OData's own punctuation ( ( ) ' , = : ) literal and percent-encodes
// Cyrillic as UTF-8; query values are percent-encoded per RFC 3986 (a space is %20,
// never '+', which 1C would read as a plus). 1C's errors ({"odata.error": …} in JSON,
// <m:error> in XML) become a *connectors.Error classified by HTTP status that
// carries 1C's message.
//
// With no base URL the request is built and validated, then logged instead of sent:
// Result{DryRun: true, Data: {"dry_run": true, "request": "GET …", "items": [],
// "count": 0}}.
func (c *Client) Execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	if req.Kind != ActionRead {
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: connectors.CodeUnsupported,
			Message: fmt.Sprintf("1c does not perform action %q", req.Kind)}
	}
	q, err := parseRead(req.Params)
	if err != nil {
		return connectors.Result{}, err
	}
	target := q.pathAndQuery()
	if c.base == "" {
		c.log.LogAttrs(ctx, slog.LevelInfo, "1c dry-run: no ONEC_ODATA_URL, request not sent",
			slog.String("object", q.object), slog.String("action_id", req.ID), slog.Int64("dialog_id", req.Dialog.ID))
		return connectors.Result{DryRun: true, Data: map[string]any{
			"dry_run": true, "request": "GET " + target, "items": []any{}, "count": 0,
		}}, nil
	}

	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+target, nil)
	if err != nil {
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: connectors.CodeBadParams,
			Message: fmt.Sprintf("read %s: build request: %v", q.object, err)}
	}
	httpReq.Header.Set("Accept", "application/json")
	if c.user != "" {
		httpReq.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(httpReq)
	if err != nil {
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: connectors.CodeNetwork, Retryable: true,
			Message: fmt.Sprintf("read %s: %v", q.object, err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: connectors.CodeNetwork, Retryable: true,
			Message: fmt.Sprintf("read %s: read response: %v", q.object, err), Err: err}
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "1c odata read", slog.String("object", q.object), slog.Int("status", resp.StatusCode),
		slog.Int("bytes", len(body)), slog.String("action_id", req.ID), slog.Int64("dialog_id", req.Dialog.ID))

	if resp.StatusCode/100 != 2 {
		return connectors.Result{}, odataError(q.object, resp, body, req.Now)
	}
	if len(body) > maxResponseBytes {
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: CodeBadResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("read %s: response exceeds %d MiB: narrow it with filter, select or top", q.object, maxResponseBytes>>20)}
	}
	items, err := decodeItems(body, q.single)
	if err != nil {
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: CodeBadResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("read %s: %v", q.object, err)}
	}
	return connectors.Result{Data: map[string]any{"items": items, "count": len(items)}}, nil
}

// decodeItems reads an OData v3 JSON answer: {"odata.metadata", "value": [...]} for
// a collection, the bare entity for a single-entity path.
func decodeItems(body []byte, single bool) ([]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, errors.New("answer is not an OData JSON object (is ONEC_ODATA_URL the standard.odata root?)")
	}
	if single {
		delete(doc, "odata.metadata")
		return []any{doc}, nil
	}
	items, ok := doc["value"].([]any)
	if !ok {
		return nil, errors.New(`answer has no "value" list`)
	}
	return items, nil
}

// odataError turns a failed answer into a typed error carrying 1C's own message.
func odataError(object string, resp *http.Response, body []byte, now time.Time) *connectors.Error {
	code, msg := parseODataError(body)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	text := fmt.Sprintf("read %s: %s", object, msg)
	if code != "" {
		text += fmt.Sprintf(" (1c error code %s)", code)
	}
	if now.IsZero() {
		now = time.Now()
	}
	e := connectors.HTTPError(connectorName, resp.StatusCode, connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), now), text)
	if n, err := strconv.Atoi(code); err == nil {
		e.APICode = n
	}
	return e
}

// parseODataError extracts the code and message of an OData error body in JSON
// ({"odata.error": {"code", "message": {"lang", "value"}}}) or XML (<m:error>).
func parseODataError(body []byte) (code, msg string) {
	var j struct {
		Error *struct {
			Code    json.RawMessage `json:"code"`
			Message struct {
				Value string `json:"value"`
			} `json:"message"`
		} `json:"odata.error"`
	}
	if err := json.Unmarshal(body, &j); err == nil && j.Error != nil {
		var s string
		if json.Unmarshal(j.Error.Code, &s) != nil {
			s = string(j.Error.Code) // a number
		}
		return strings.TrimSpace(s), strings.TrimSpace(j.Error.Message.Value)
	}
	var x struct {
		XMLName xml.Name `xml:"error"`
		Code    string   `xml:"code"`
		Message string   `xml:"message"`
	}
	if err := xml.Unmarshal(body, &x); err == nil {
		return strings.TrimSpace(x.Code), strings.TrimSpace(x.Message)
	}
	return "", ""
}

// readQuery is a validated onec.read request.
type readQuery struct {
	object  string // as given, for messages
	path    string // escaped path below the OData root
	single  bool   // the path addresses one entity
	options []option
}

type option struct{ name, value string }

// pathAndQuery renders the request target below the OData root.
func (q readQuery) pathAndQuery() string {
	var b strings.Builder
	b.WriteString(q.path)
	b.WriteString("?$format=json")
	for _, o := range q.options {
		b.WriteString("&")
		b.WriteString(o.name)
		b.WriteString("=")
		b.WriteString(escapeQueryValue(o.value))
	}
	return b.String()
}

// parseRead validates the params of onec.read.
func parseRead(params map[string]any) (readQuery, error) {
	var q readQuery
	object, err := textParam(params, "object")
	if err != nil {
		return q, err
	}
	object = strings.TrimSpace(object)
	if object == "" {
		return q, badParams("missing required param object")
	}
	for _, seg := range strings.Split(object, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return q, badParams(fmt.Sprintf("param object %q must be an OData path such as Document_СчетНаОплатуПокупателю, without empty, '.' or '..' segments", object))
		}
	}
	if strings.ContainsAny(object, "?#\\%") || strings.ContainsFunc(object, isControl) {
		return q, badParams(fmt.Sprintf("param object %q must not contain '?', '#', '\\', '%%' or control characters: give query options as filter, select, orderby, top, expand", object))
	}
	q.object, q.path = object, escapePath(object)
	last := object[strings.LastIndex(object, "/")+1:]
	q.single = strings.HasSuffix(last, ")")

	for _, o := range []struct {
		param, name string
		list        bool
	}{
		{"filter", "$filter", false},
		{"select", "$select", true},
		{"orderby", "$orderby", true},
	} {
		v, err := listOrText(params, o.param, o.list)
		if err != nil {
			return q, err
		}
		if v != "" {
			q.options = append(q.options, option{o.name, v})
		}
	}
	if top, ok, err := topParam(params); err != nil {
		return q, err
	} else if ok {
		q.options = append(q.options, option{"$top", strconv.FormatInt(top, 10)})
	}
	expand, err := listOrText(params, "expand", true)
	if err != nil {
		return q, err
	}
	if expand != "" {
		q.options = append(q.options, option{"$expand", expand})
	}
	return q, nil
}

// textParam reads an optional string param; numbers are not accepted where OData
// syntax is expected, to catch misplaced params early.
func textParam(params map[string]any, name string) (string, error) {
	switch v := params[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", badParams(fmt.Sprintf("param %s must be a string, not %T", name, v))
	}
}

// listOrText reads a string param, or (when list) a list of strings joined by
// commas.
func listOrText(params map[string]any, name string, list bool) (string, error) {
	v := params[name]
	if s, ok := v.(string); ok || v == nil {
		return strings.TrimSpace(s), nil
	}
	var items []string
	isList := false
	switch x := v.(type) {
	case []string:
		items, isList = x, true
	case []any:
		isList = true
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", badParams(fmt.Sprintf("param %s[%d] must be a string, not %T", name, i, e))
			}
			items = append(items, s)
		}
	}
	if !list || !isList {
		return "", badParams(fmt.Sprintf("param %s must be a string, not %T", name, v))
	}
	var parts []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ","), nil
}

// topParam reads "top": a non-negative integer given as a number or a string.
func topParam(params map[string]any) (int64, bool, error) {
	var f float64
	switch v := params["top"].(type) {
	case nil:
		return 0, false, nil
	case float64:
		f = v
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case json.Number:
		n, err := v.Float64()
		if err != nil {
			return 0, false, badParams("param top must be a non-negative integer")
		}
		f = n
	case string:
		if strings.TrimSpace(v) == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, false, badParams(fmt.Sprintf("param top %q is not a number", v))
		}
		f = n
	default:
		return 0, false, badParams(fmt.Sprintf("param top must be a non-negative integer, not %T", v))
	}
	if f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, false, badParams(fmt.Sprintf("param top must be a non-negative integer, not %v", f))
	}
	return int64(f), true, nil
}

// escapePath percent-encodes an OData resource path: unreserved characters, '/',
// and the sub-delimiters and ':' '@' that OData keys use (guid'…', Key=value, a,b)
// stay literal, as RFC 3986 allows in a path; everything else, Cyrillic included,
// becomes %XX of its UTF-8 bytes.
func escapePath(s string) string {
	return escape(s, func(c byte) bool {
		return isUnreserved(c) || strings.IndexByte("/!$&'()*+,;=:@", c) >= 0
	})
}

// escapeQueryValue percent-encodes a query option value like PHP's rawurlencode:
// only unreserved characters stay literal, so a space is %20, '+' is %2B and '&' is
// %26.
func escapeQueryValue(s string) string { return escape(s, isUnreserved) }

func escape(s string, keep func(byte) bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// badParams is the error of unusable action params.
func badParams(msg string) *connectors.Error {
	return &connectors.Error{Connector: connectorName, Code: connectors.CodeBadParams, Message: msg}
}
