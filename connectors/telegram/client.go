package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/connectors"
)

// DefaultBaseURL is the Bot API base used when Config.BaseURL is empty.
const DefaultBaseURL = "https://api.telegram.org"

// ActionAnswerCallback is the action kind that answers a callback query, which stops
// the progress indicator on the button the user pressed.
const ActionAnswerCallback = "telegram.answer_callback"

// CodeBadResponse is the error code of a 2xx answer that is not a Bot API success
// envelope. It is not retried: the request most likely took effect, and sending a
// message twice is worse than reporting the failure.
const CodeBadResponse = "bad_response"

const (
	connectorName    = "telegram"
	defaultTimeout   = 30 * time.Second
	maxResponseBytes = 1 << 20
	maxTextRunes     = 4096 // sendMessage text: 1-4096 characters
	maxCallbackText  = 200  // answerCallbackQuery text: 0-200 characters
	maxCallbackData  = 64   // callback_data: 1-64 bytes
)

// Config configures a Client.
type Config struct {
	// BaseURL is the Bot API base (TELEGRAM_API_URL); DefaultBaseURL when empty.
	BaseURL string
	// Token is the bot token (TELEGRAM_BOT_TOKEN); empty means dry-run.
	Token string
	// HTTP is the client used for API calls; one with a 30 s timeout when nil.
	HTTP *http.Client
	// Logger receives debug lines about calls and info lines about dry runs;
	// nothing is logged when nil.
	Logger *slog.Logger
	// Files keeps downloaded photos and documents and gives the files a send
	// uploads; nil: files are neither downloaded nor uploaded.
	Files connectors.Files
}

// Client talks to the Telegram Bot API. It is a connectors.Sender for the
// "telegram" channel and a connectors.Executor for ActionAnswerCallback. It is safe
// for concurrent use.
type Client struct {
	base   string
	token  string
	http   *http.Client
	log    *slog.Logger
	secret []string // forms of the token that must never leave the client
	files  connectors.Files
}

var (
	_ connectors.Sender   = (*Client)(nil)
	_ connectors.Executor = (*Client)(nil)
)

// New returns a Client for cfg. It fails when BaseURL is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("configure telegram client: base URL %q must be an absolute http(s) URL without query", cfg.BaseURL)
	}
	c := &Client{base: base, token: cfg.Token, http: cfg.HTTP, log: cfg.Logger, files: cfg.Files}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Token != "" {
		c.secret = []string{cfg.Token}
		if esc := url.PathEscape(cfg.Token); esc != cfg.Token {
			c.secret = append(c.secret, esc)
		}
	}
	return c, nil
}

// Channel returns "telegram": the client delivers "send" for Telegram dialogs.
func (c *Client) Channel() string { return connectorName }

// Kinds returns the action kinds the client performs besides "send".
func (c *Client) Kinds() []string { return connectors.KindsOf(Actions) }

// Actions describes telegram.answer_callback ("send" is every sender's,
// connectors.SendSpec).
func (c *Client) Actions() []connectors.ActionSpec { return Actions }

// Actions are the telegram.* actions a flow may write.
var Actions = []connectors.ActionSpec{
	{Name: ActionAnswerCallback, Shorthand: "callback_id", Doc: "Answer a Telegram button tap.", Params: []connectors.Param{
		{Name: "callback_id", Type: connectors.TypeTemplate, Required: true, Doc: "Usually ${event.data.callback_id}.", Example: "callback-example"},
		{Name: "text", Type: connectors.TypeTemplate, MaxLen: maxCallbackText, Doc: "Notification text shown to the user.", Example: "text-example"},
		{Name: "show_alert", Type: connectors.TypeBool, Doc: "Show the text as an alert the user must close, not as a notification (default false).", Example: true},
	}},
}

// Limits is what Telegram accepts in one message: the text (header and footer
// joined to it) and callback_data, which carries a button's or a row's id.
var Limits = connectors.Limits{Text: maxTextRunes, Body: maxTextRunes, ButtonIDBytes: maxCallbackData, RowIDBytes: maxCallbackData}

// Describe says what Telegram accepts in one message.
func (c *Client) Describe() connectors.Channel {
	return connectors.Channel{Name: connectorName, Title: "Telegram", Limits: Limits}
}

// Execute performs req: "send" (as the channel's Sender) or ActionAnswerCallback.
//
// "send" posts sendMessage to the dialog's chat (req.Dialog.ContactID) with these
// params: text (required), header and footer (Telegram has neither: they become
// paragraphs before and after the text), buttons ([]{id, title}: an inline keyboard
// with one button per row, so titles are never squeezed; callback_data is the id) or
// list ({rows: []{id, title, description}}: one button per row, its text
// "title — description"; button and section have no Telegram counterpart and are
// ignored). template and fallback are WhatsApp notions: they are ignored next to
// text, and a template alone is a CodeBadParams error. Telegram has no 24-hour
// window. Result.Data: {"message_id", "chat_id", "via": "text|buttons|list"}.
//
// ActionAnswerCallback posts answerCallbackQuery with params callback_id (required),
// text and show_alert (optional). Result.Data: {"callback_id", "answered": true}.
//
// With no token the request is built and validated, then logged instead of sent:
// Result{DryRun: true, Data: {"dry_run": true, "method", "payload"}}, and "via" for
// a send.
func (c *Client) Execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	switch req.Kind {
	case "send":
		return c.send(ctx, req)
	case ActionAnswerCallback:
		return c.answerCallback(ctx, req)
	default:
		return connectors.Result{}, &connectors.Error{Connector: connectorName, Code: connectors.CodeUnsupported,
			Message: fmt.Sprintf("telegram does not perform action %q", req.Kind)}
	}
}

// sendMessageRequest is the body of sendMessage. Text is sent without parse_mode:
// flow texts are plain, and Markdown/HTML would require escaping customer data.
type sendMessageRequest struct {
	ChatID      any             `json:"chat_id"` // json.Number for numeric ids, string for @channel
	Text        string          `json:"text"`
	ReplyMarkup *inlineKeyboard `json:"reply_markup,omitempty"`
}

type inlineKeyboard struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

type answerCallbackRequest struct {
	CallbackQueryID string `json:"callback_query_id"`
	Text            string `json:"text,omitempty"`
	ShowAlert       bool   `json:"show_alert,omitempty"`
}

func (c *Client) send(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	chat := strings.TrimSpace(req.Dialog.ContactID)
	if chat == "" {
		return connectors.Result{}, badParams("the dialog has no telegram chat id to send to")
	}
	media, err := buildMedia(req.Params)
	if err != nil {
		return connectors.Result{}, err
	}
	if media != nil {
		return c.sendMedia(ctx, req, chat, media)
	}
	msg, via, err := buildMessage(req.Params)
	if err != nil {
		return connectors.Result{}, err
	}
	msg.ChatID = chatIDValue(chat)
	// A template can make the text longer than Telegram takes: it goes out cut.
	var cut string
	if n := utf8.RuneCountInString(msg.Text); n > maxTextRunes {
		msg.Text, _ = connectors.TruncateChars(msg.Text, maxTextRunes)
		cut = fmt.Sprintf("text: %d characters with header and footer, cut to %d", n, maxTextRunes)
		c.log.LogAttrs(ctx, slog.LevelWarn, "telegram: the text is over Telegram's limit and was cut to fit",
			slog.String("cut", cut), slog.String("action_id", req.ID), slog.Int64("dialog_id", req.Dialog.ID))
	}
	var res connectors.Result
	if c.token == "" {
		res, err = c.dryRun(ctx, req, "sendMessage", msg)
		if err == nil {
			res.Data["via"] = via
		}
	} else {
		var sent struct {
			MessageID json.Number `json:"message_id"`
		}
		err = c.call(ctx, req, "sendMessage", msg, &sent)
		res = connectors.Result{Data: map[string]any{
			"message_id": sent.MessageID.String(),
			"chat_id":    chat,
			"via":        via,
		}}
	}
	if err != nil {
		return connectors.Result{}, err
	}
	if cut != "" {
		res.Data["cut"] = []any{cut}
	}
	return res, nil
}

func (c *Client) answerCallback(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	id, err := stringParam(req.Params, "callback_id", true)
	if err != nil {
		return connectors.Result{}, err
	}
	text, err := stringParam(req.Params, "text", false)
	if err != nil {
		return connectors.Result{}, err
	}
	if n := len([]rune(text)); n > maxCallbackText {
		return connectors.Result{}, badParams(fmt.Sprintf("param text has %d characters; telegram allows at most %d in a callback answer", n, maxCallbackText))
	}
	showAlert, _ := req.Params["show_alert"].(bool)
	body := answerCallbackRequest{CallbackQueryID: id, Text: text, ShowAlert: showAlert}
	if c.token == "" {
		return c.dryRun(ctx, req, "answerCallbackQuery", body)
	}
	var ok bool
	if err := c.call(ctx, req, "answerCallbackQuery", body, &ok); err != nil {
		return connectors.Result{}, err
	}
	return connectors.Result{Data: map[string]any{"callback_id": id, "answered": ok}}, nil
}

// buildMessage turns the params of "send" into a sendMessage body without chat_id.
func buildMessage(params map[string]any) (sendMessageRequest, string, error) {
	var msg sendMessageRequest
	text, err := stringParam(params, "text", false)
	if err != nil {
		return msg, "", err
	}
	if strings.TrimSpace(text) == "" {
		if params["template"] != nil {
			return msg, "", badParams("telegram has no templates: give the send action a text")
		}
		return msg, "", badParams("missing required param text")
	}
	header, err := stringParam(params, "header", false)
	if err != nil {
		return msg, "", err
	}
	footer, err := stringParam(params, "footer", false)
	if err != nil {
		return msg, "", err
	}
	var parts []string
	for _, p := range []string{header, text, footer} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	msg.Text = strings.Join(parts, "\n\n") // cut to Telegram's limit by send

	via := "text"
	buttons, list := params["buttons"], params["list"]
	switch {
	case buttons != nil && list != nil:
		return msg, "", badParams("params buttons and list are mutually exclusive")
	case buttons != nil:
		rows, err := buttonRows(buttons)
		if err != nil {
			return msg, "", err
		}
		if len(rows) > 0 {
			msg.ReplyMarkup, via = &inlineKeyboard{InlineKeyboard: rows}, "buttons"
		}
	case list != nil:
		rows, err := listRows(list)
		if err != nil {
			return msg, "", err
		}
		msg.ReplyMarkup, via = &inlineKeyboard{InlineKeyboard: rows}, "list"
	}
	return msg, via, nil
}

// buttonRows reads buttons ([]{id, title}; a plain string is a button whose id is
// its title) into keyboard rows of one button each.
func buttonRows(v any) ([][]inlineButton, error) {
	items, ok := asList(v)
	if !ok {
		return nil, badParams("param buttons must be a list of {id, title}")
	}
	rows := make([][]inlineButton, 0, len(items))
	for i, it := range items {
		b, err := button(fmt.Sprintf("buttons[%d]", i), it, false)
		if err != nil {
			return nil, err
		}
		rows = append(rows, []inlineButton{b})
	}
	return rows, nil
}

// listRows reads a WhatsApp-style list ({rows: []{id, title, description}}) into
// keyboard rows of one button each.
func listRows(v any) ([][]inlineButton, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badParams("param list must be an object with rows")
	}
	items, ok := asList(m["rows"])
	if !ok || len(items) == 0 {
		return nil, badParams("param list.rows must be a non-empty list of {id, title, description}")
	}
	rows := make([][]inlineButton, 0, len(items))
	for i, it := range items {
		b, err := button(fmt.Sprintf("list.rows[%d]", i), it, true)
		if err != nil {
			return nil, err
		}
		rows = append(rows, []inlineButton{b})
	}
	return rows, nil
}

// button reads one {id, title[, description]} into an inline button.
func button(name string, v any, withDescription bool) (inlineButton, error) {
	var id, title, desc string
	switch x := v.(type) {
	case string:
		id, title = x, x
	case map[string]any:
		id, _ = scalarString(x["id"])
		title, _ = scalarString(x["title"])
		if withDescription {
			desc, _ = scalarString(x["description"])
		}
		if id == "" {
			id = title
		}
		if title == "" {
			title = id
		}
	default:
		return inlineButton{}, badParams(fmt.Sprintf("param %s must be {id, title}", name))
	}
	id, title, desc = strings.TrimSpace(id), strings.TrimSpace(title), strings.TrimSpace(desc)
	if id == "" {
		return inlineButton{}, badParams(fmt.Sprintf("param %s needs an id or a title", name))
	}
	if len(id) > maxCallbackData {
		return inlineButton{}, badParams(fmt.Sprintf("param %s.id is %d bytes; telegram callback data allows at most %d", name, len(id), maxCallbackData))
	}
	if desc != "" {
		title += " — " + desc
	}
	return inlineButton{Text: title, CallbackData: id}, nil
}

// dryRun reports what would have been sent.
func (c *Client) dryRun(ctx context.Context, req connectors.Request, method string, body any) (connectors.Result, error) {
	payload, err := asPlainMap(body)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("build telegram %s dry-run payload: %w", method, err)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "telegram dry-run: no bot token, request not sent",
		slog.String("method", method), slog.String("action_id", req.ID), slog.Int64("dialog_id", req.Dialog.ID))
	return connectors.Result{DryRun: true, Data: map[string]any{"dry_run": true, "method": method, "payload": payload}}, nil
}

// apiResponse is the Bot API envelope of every answer.
type apiResponse struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// call POSTs body to a Bot API method and decodes the result into out. Every error
// it returns is a *connectors.Error free of the token.
func (c *Client) call(ctx context.Context, req connectors.Request, method string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode telegram %s request: %w", method, err)
	}
	return c.callBody(ctx, req, method, bytes.NewReader(payload), "application/json", out)
}

// callBody POSTs a body of contentType to a Bot API method; see call.
func (c *Client) callBody(ctx context.Context, req connectors.Request, method string, body io.Reader, contentType string, out any) error {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/bot"+c.token+"/"+method, body)
	if err != nil {
		// New validated the base URL, so the token is what breaks the URL (a stray
		// newline from an env file, say). The error quotes the URL, and with it the
		// token: do not wrap it.
		return &connectors.Error{Connector: connectorName, Code: connectors.CodeAuth,
			Message: method + ": the configured bot token does not fit in a request URL"}
	}
	httpReq.Header.Set("Content-Type", contentType)
	httpReq.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(httpReq)
	if err != nil {
		e := c.transportError(method, err)
		c.log.LogAttrs(ctx, slog.LevelDebug, "telegram call failed", slog.String("method", method),
			slog.String("action_id", req.ID), slog.String("error", e.Message))
		return e
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return c.transportError(method, fmt.Errorf("read response: %w", err))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "telegram call", slog.String("method", method),
		slog.String("action_id", req.ID), slog.Int64("dialog_id", req.Dialog.ID), slog.Int("status", resp.StatusCode))

	var env apiResponse
	decodeErr := json.Unmarshal(raw, &env)
	if resp.StatusCode/100 == 2 && decodeErr == nil && env.OK {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return &connectors.Error{Connector: connectorName, Code: CodeBadResponse, Status: resp.StatusCode,
				Message: method + ": unexpected result: " + c.redact(err.Error())}
		}
		return nil
	}
	return c.apiError(method, resp, env, decodeErr == nil, req.Now)
}

// apiError classifies a failed Bot API answer. Telegram's error_code mirrors the
// HTTP status; it is preferred when present.
func (c *Client) apiError(method string, resp *http.Response, env apiResponse, decoded bool, now time.Time) *connectors.Error {
	status := resp.StatusCode
	if decoded && env.ErrorCode >= 400 {
		status = env.ErrorCode
	}
	desc := strings.TrimSpace(env.Description)
	if !decoded || desc == "" {
		desc = http.StatusText(resp.StatusCode)
	}
	msg := method + ": " + c.redact(desc)
	if status < 400 {
		return &connectors.Error{Connector: connectorName, Code: CodeBadResponse, Status: resp.StatusCode,
			Message: msg + " (not a Bot API success answer)"}
	}
	if decoded && env.Parameters != nil && env.Parameters.MigrateToChatID != 0 {
		msg += fmt.Sprintf(" (the group is now supergroup %d)", env.Parameters.MigrateToChatID)
	}
	if now.IsZero() {
		now = time.Now()
	}
	retryAfter := connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	if decoded && env.Parameters != nil && env.Parameters.RetryAfter > 0 {
		retryAfter = time.Duration(env.Parameters.RetryAfter) * time.Second
	}
	e := connectors.HTTPError(connectorName, status, retryAfter, msg)
	e.Status = resp.StatusCode
	if decoded {
		e.APICode = env.ErrorCode
	}
	switch status {
	case http.StatusUnauthorized, http.StatusNotFound:
		// The Bot API answers 401 Unauthorized for a revoked token and 404 Not Found
		// for a malformed one: both mean the bot's credentials are wrong.
		e.Code = connectors.CodeAuth
	case http.StatusForbidden:
		// "Forbidden: bot was blocked by the user", "user is deactivated", "bot was
		// kicked from the group chat": the recipient cannot be reached.
		e.Code = connectors.CodeUndeliverable
	}
	return e
}

// transportError turns a failed round trip into a retryable network error. The
// *url.Error of net/http quotes the request URL, which holds the token: it is rebuilt
// with the URL redacted before it is kept as the cause.
func (c *Client) transportError(method string, err error) *connectors.Error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = &url.Error{Op: ue.Op, URL: c.redact(ue.URL), Err: ue.Err}
	}
	return &connectors.Error{Connector: connectorName, Code: connectors.CodeNetwork, Retryable: true,
		Message: method + ": " + c.redact(err.Error()), Err: connectors.RedactedError{Msg: c.redact(err.Error()), Err: err}}
}

// redact removes every form of the token from s.
func (c *Client) redact(s string) string { return connectors.Redact(s, c.secret...) }

// badParams is the error of unusable action params.
func badParams(msg string) *connectors.Error {
	return &connectors.Error{Connector: connectorName, Code: connectors.CodeBadParams, Message: msg}
}

// stringParam reads a string param, accepting numbers and bools as their text.
func stringParam(params map[string]any, name string, required bool) (string, error) {
	v, present := params[name]
	if !present || v == nil {
		if required {
			return "", badParams("missing required param " + name)
		}
		return "", nil
	}
	s, ok := scalarString(v)
	if !ok {
		return "", badParams(fmt.Sprintf("param %s must be a string, not %T", name, v))
	}
	if required && strings.TrimSpace(s) == "" {
		return "", badParams("missing required param " + name)
	}
	return s, nil
}

// scalarString renders a string, number or bool param as text.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		// 'f' with the shortest precision renders integral ids as 1542, not 1.542e+03.
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool:
		return fmt.Sprint(x), true
	default:
		return "", false
	}
}

// asList accepts the list shapes params may come in.
func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case []map[string]any:
		out := make([]any, len(x))
		for i, m := range x {
			out[i] = m
		}
		return out, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	default:
		return nil, false
	}
}

// chatIDValue sends numeric chat ids as JSON numbers (exactly, via json.Number) and
// anything else (an @channel username) as a string.
func chatIDValue(chat string) any {
	if _, err := strconv.ParseInt(chat, 10, 64); err == nil {
		return json.Number(chat)
	}
	return chat
}

// asPlainMap renders a request body as the map[string]any it is on the wire.
func asPlainMap(body any) (map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
