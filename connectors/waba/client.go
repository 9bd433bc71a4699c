package waba

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
)

// DefaultBaseURL is the Graph API base used when Config.BaseURL is empty.
const DefaultBaseURL = "https://graph.facebook.com/v21.0"

// KindMarkRead is the action kind that marks an inbound message as read.
const KindMarkRead = "waba.mark_read"

// maxResponse bounds how much of a Graph response is read.
const maxResponse = 1 << 20

// Config configures a Client. With AccessToken or PhoneNumberIDs empty the client
// runs dry: it validates and builds every request but sends nothing.
type Config struct {
	BaseURL     string // Graph API base; DefaultBaseURL when empty
	AccessToken string // system-user or app access token (sent as a bearer token), for every number
	// PhoneNumberIDs are the business phone numbers' ids (not the numbers
	// themselves), of one WhatsApp Business Account. A message leaves from its
	// dialog's business number; the first is the default.
	PhoneNumberIDs []string
	HTTP           *http.Client // nil: a client with a 30s timeout
	// Files keeps downloaded media and gives the files a send uploads; nil: media
	// is neither downloaded nor uploaded (a link still goes).
	Files  connectors.Files
	Logger *slog.Logger // nil: discard
}

// ParsePhoneNumberIDs reads WABA_PHONE_NUMBER_ID: one phone number id or a
// comma-separated list of them (spaces around the commas allowed). Each must be
// digits, and none may repeat.
func ParsePhoneNumberIDs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for i, part := range strings.Split(s, ",") {
		id := strings.TrimSpace(part)
		if id == "" || strings.Trim(id, "0123456789") != "" {
			return nil, fmt.Errorf("WABA_PHONE_NUMBER_ID: item %d is %q, not a phone number id (digits, as WhatsApp Manager shows it)", i+1, id)
		}
		if slices.Contains(out, id) {
			return nil, fmt.Errorf("WABA_PHONE_NUMBER_ID: %s is listed twice", id)
		}
		out = append(out, id)
	}
	return out, nil
}

// Client sends WhatsApp messages through the Cloud API. It is both the "waba"
// connectors.Sender and the connectors.Executor of "waba.mark_read", and is safe
// for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger
}

var (
	_ connectors.Sender   = (*Client)(nil)
	_ connectors.Executor = (*Client)(nil)
)

// New returns a Client for cfg, filling in defaults.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: log.With("connector", "waba")}
}

// Channel returns "waba": the client delivers "send" actions of WhatsApp dialogs.
func (c *Client) Channel() string { return "waba" }

// Kinds returns the action kinds the client performs besides "send".
func (c *Client) Kinds() []string { return connectors.KindsOf(Actions) }

// Actions describes waba.mark_read ("send" is every sender's, connectors.SendSpec).
func (c *Client) Actions() []connectors.ActionSpec { return Actions }

// Actions are the waba.* actions a flow may write.
var Actions = []connectors.ActionSpec{
	{Name: KindMarkRead, Shorthand: "message_id", Doc: "Mark a WhatsApp message as read.", Params: []connectors.Param{
		{Name: "message_id", Type: connectors.TypeTemplate, Required: true, Doc: "The wamid, usually ${event.data.id}.", Example: "wamid.example"},
	}},
}

// Describe says what WhatsApp accepts in one message.
func (c *Client) Describe() connectors.Channel {
	return connectors.Channel{Name: "waba", Title: "WhatsApp", Limits: Limits}
}

// DryRun reports whether credentials are unset, so that nothing is sent.
func (c *Client) DryRun() bool { return c.cfg.AccessToken == "" || len(c.cfg.PhoneNumberIDs) == 0 }

// from returns the business number a request's message leaves from: its dialog's,
// or the first configured one when the dialog has none. A dialog's number that is
// not (or no longer) configured is an error, not another number's message.
func (c *Client) from(req connectors.Request) (string, error) {
	n := req.Dialog.BusinessNumber
	switch {
	case n == "" && len(c.cfg.PhoneNumberIDs) > 0:
		return c.cfg.PhoneNumberIDs[0], nil
	case n == "" || len(c.cfg.PhoneNumberIDs) == 0 || slices.Contains(c.cfg.PhoneNumberIDs, n):
		return n, nil
	}
	return "", &connectors.Error{Connector: "waba", Code: CodeNumberNotConfigured,
		Message: "the dialog's business number " + n + " is not configured (WABA_PHONE_NUMBER_ID)"}
}

// CodeNumberNotConfigured is the error code of a message whose dialog's business
// number is not among the configured ones: it is not sent from another number.
const CodeNumberNotConfigured = "number_not_configured"

// Execute performs a "send" or "waba.mark_read" action. A send answers
// {"message_id", "via"}; mark-read answers {"message_id"}. Failures are
// *connectors.Error values that say whether the outbox should retry.
func (c *Client) Execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	var (
		msg *outMessage
		via string
		cut cuts
		err error
	)
	switch req.Kind {
	case "send":
		msg, via, cut, err = buildSend(req, now)
	case KindMarkRead:
		id := paramString(req.Params["message_id"])
		if id == "" {
			err = badParams("message_id is required")
		}
		msg = &outMessage{MessagingProduct: "whatsapp", Status: "read", MessageID: id}
	default:
		err = &connectors.Error{Connector: "waba", Code: connectors.CodeUnsupported,
			Message: fmt.Sprintf("action %q is not a waba action", req.Kind)}
	}
	if err != nil {
		return connectors.Result{}, err
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("encode waba %s request: %w", req.Kind, err)
	}
	number, err := c.from(req)
	if err != nil {
		return connectors.Result{}, err
	}
	log := c.log.With("dialog_id", req.Dialog.ID, "action_id", req.ID, "kind", req.Kind, "from", number)
	if via != "" {
		log = log.With("via", via)
	}
	log.Debug("waba request", "payload", string(body))

	data := map[string]any{}
	if via != "" {
		data["via"] = via
	}
	if number != "" && req.Kind == "send" {
		data["from"] = number
	}
	if len(cut) > 0 {
		// A template made a value longer than WhatsApp takes: it goes out cut.
		log.Warn("waba: values over WhatsApp's limits were cut to fit", "cut", []string(cut))
		notes := make([]any, len(cut))
		for i, x := range cut {
			notes[i] = x
		}
		data["cut"] = notes
	}
	if c.DryRun() {
		var payload map[string]any
		_ = json.Unmarshal(body, &payload) // our own encoding always decodes
		data["dry_run"], data["payload"] = true, payload
		log.Info("waba dry-run: credentials unset, nothing sent")
		return connectors.Result{Data: data, DryRun: true}, nil
	}

	if m := msg.media(); m != nil && strings.HasPrefix(m.ID, uploadMarker) {
		if err := c.uploadFiles(ctx, number, msg); err != nil {
			return connectors.Result{}, err
		}
		if body, err = json.Marshal(msg); err != nil {
			return connectors.Result{}, fmt.Errorf("encode waba %s request: %w", req.Kind, err)
		}
	}
	resp, err := c.post(ctx, number, body, now)
	if err != nil {
		return connectors.Result{}, err
	}
	id := msg.MessageID // mark-read answers {"success": true} only
	if len(resp.Messages) > 0 {
		id = resp.Messages[0].ID
		if s := resp.Messages[0].MessageStatus; s != "" {
			data["message_status"] = s // accepted, held_for_quality_assessment, paused
		}
	}
	if id == "" {
		log.Warn("waba answered success without a message id")
	}
	data["message_id"] = id
	log.Info("waba request done", "message_id", id)
	return connectors.Result{Data: data}, nil
}

// sendResponse is the success body of POST /messages.
type sendResponse struct {
	Messages []struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status"`
	} `json:"messages"`
}

// post sends body to {base}/{phone-number-id}/messages, from the business number
// number, and decodes the answer.
func (c *Client) post(ctx context.Context, number string, body []byte, now time.Time) (*sendResponse, error) {
	u := c.cfg.BaseURL + "/" + url.PathEscape(number) + "/messages"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build waba request: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+c.cfg.AccessToken)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	resp, err := c.cfg.HTTP.Do(hreq)
	if err != nil {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeNetwork, Retryable: true,
			Message: c.redact("post message: " + err.Error()), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &connectors.Error{Connector: "waba", Code: connectors.CodeNetwork, Retryable: true,
			Status: resp.StatusCode, Message: c.redact("read response: " + err.Error()), Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		retryAfter := connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		return nil, c.graphError(resp.StatusCode, retryAfter, raw)
	}
	// A 2xx means Meta accepted the message: an unreadable body is not worth a retry
	// that would send it twice (Execute warns about the missing id).
	var out sendResponse
	_ = json.Unmarshal(raw, &out)
	return &out, nil
}

// graphErrorBody is the Graph API error envelope.
type graphErrorBody struct {
	Error *struct {
		Message     string          `json:"message"`
		Type        string          `json:"type"`
		Code        int             `json:"code"`
		Subcode     int             `json:"error_subcode"`
		ErrorData   json.RawMessage `json:"error_data"` // {"details": ...} or a bare string
		FBTraceID   string          `json:"fbtrace_id"`
		IsTransient bool            `json:"is_transient"`
	} `json:"error"`
}

// graphError classifies a failed response by its Graph error code, falling back to
// the HTTP status (429 and 5xx retry, honouring Retry-After; other 4xx do not).
func (c *Client) graphError(status int, retryAfter time.Duration, raw []byte) *connectors.Error {
	var body graphErrorBody
	if json.Unmarshal(raw, &body) != nil || body.Error == nil {
		return connectors.HTTPError("waba", status, retryAfter, fmt.Sprintf("graph api answered %d %s",
			status, http.StatusText(status)))
	}
	g := body.Error
	msg := firstNonEmpty(g.Message, g.Type)
	if d := errorDetails(g.ErrorData); d != "" {
		msg += ": " + d
	}
	if g.Subcode != 0 {
		msg += fmt.Sprintf(" (subcode %d)", g.Subcode)
	}
	if g.FBTraceID != "" {
		msg += " (fbtrace_id " + g.FBTraceID + ")"
	}
	msg = c.redact(msg)

	e := &connectors.Error{Connector: "waba", Status: status, APICode: g.Code, Message: msg}
	switch g.Code {
	case 131047:
		e.Code = connectors.CodeWindowClosed
	case 131026:
		e.Code = connectors.CodeUndeliverable
	case 130429, 131056, 4, 80007:
		e.Code, e.Retryable, e.RetryAfter = connectors.CodeRateLimited, true, retryAfter
	case 190:
		e.Code = connectors.CodeAuth
	case 100:
		e.Code = connectors.CodeBadParams
	default:
		e = connectors.HTTPError("waba", status, retryAfter, msg)
		e.APICode = g.Code
		e.Retryable = e.Retryable || g.IsTransient // Graph's own "try again" flag
	}
	return e
}

// errorDetails reads error_data, which is {"details": "..."} or a bare string.
func errorDetails(raw json.RawMessage) string {
	var d struct {
		Details string `json:"details"`
	}
	if json.Unmarshal(raw, &d) == nil {
		return d.Details
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// redact removes the access token from text that may echo a request.
func (c *Client) redact(s string) string { return connectors.Redact(s, c.cfg.AccessToken) }
