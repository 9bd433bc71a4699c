// Package connectors holds what every connector package shares: the outbound action
// request and result, the typed error that tells the outbox whether to retry, and an
// explicit registry that maps action kinds to the executor that performs them.
//
// Each system has its own package (connectors/waba, connectors/telegram,
// connectors/okdesk, connectors/onec, connectors/httpcall) with inbound parsing,
// normalization and an outbound client. Nothing here is global: the server and the
// tests build their own Registry.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
)

// Request is one outbound action taken from the outbox.
type Request struct {
	ID     string         // outbox row id: stable across retries, usable as an idempotency key
	Kind   string         // action kind, e.g. "send", "okdesk.create_issue"
	Params map[string]any // evaluated parameters (strings, numbers, bools, lists, maps)
	// Dialog is the dialog the action belongs to (zero for one without a dialog).
	Dialog dialog.Dialog
	// LastInboundAt is the time of the dialog contact's last inbound message
	// (WhatsApp's 24-hour customer-service window starts there); zero when unknown.
	LastInboundAt time.Time
	Now           time.Time // the executor's notion of now (fake clock in tests)
	// Attempt counts the tries of this action, 1 on the first. An executor whose
	// remote side has no idempotency key can look for the effect of an earlier
	// try (which may have succeeded before the process died) when Attempt > 1.
	Attempt int
}

// Result is what a successful action answers; Data goes back to the dialog as the
// data of an action.done event.
type Result struct {
	Data   map[string]any
	DryRun bool // credentials were unset; nothing was sent
}

// Error codes shared by all connectors. A connector may use its own codes too.
const (
	CodeNetwork       = "network"       // connection failed or timed out: retry
	CodeRateLimited   = "rate_limited"  // 429 or the API's own rate-limit code: retry
	CodeServer        = "server_error"  // 5xx: retry
	CodeBadRequest    = "bad_request"   // other 4xx: no retry
	CodeAuth          = "auth"          // credentials rejected (401/403, Graph 190): no retry
	CodeNotFound      = "not_found"     // 404: no retry
	CodeWindowClosed  = "window_closed" // WhatsApp 24-hour window closed (131047): no retry
	CodeUndeliverable = "undeliverable" // WhatsApp 131026: no retry
	CodeBadParams     = "bad_params"    // the action's parameters are unusable: no retry
	CodeUnsupported   = "unsupported"   // no executor for this kind or channel: no retry
)

// Error is the typed error of an outbound action.
type Error struct {
	Connector  string        // "waba", "telegram", "okdesk", "onec", "http"
	Code       string        // one of the Code constants or a connector-specific code
	Status     int           // HTTP status, 0 when none
	APICode    int           // the API's own error code (Graph error.code), 0 when none
	Message    string        // human-readable; never contains a secret
	Retryable  bool          // the outbox should try again later
	RetryAfter time.Duration // server-requested delay (Retry-After), 0 when none
	Err        error         // underlying error, if any
}

func (e *Error) Error() string {
	s := e.Connector + ": " + e.Code
	if e.Status != 0 {
		s += fmt.Sprintf(" (http %d)", e.Status)
	}
	if e.APICode != 0 {
		s += fmt.Sprintf(" (code %d)", e.APICode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil && e.Message == "" {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as *Error. Errors that are not typed are treated as network
// failures (retryable), because an unknown failure must not drop an action.
func AsError(connector string, err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Connector: connector, Code: CodeNetwork, Message: "canceled", Retryable: true, Err: err}
	}
	return &Error{Connector: connector, Code: CodeNetwork, Message: err.Error(), Retryable: true, Err: err}
}

// HTTPError classifies an HTTP failure status: 429 and 5xx are retryable, other 4xx not.
func HTTPError(connector string, status int, retryAfter time.Duration, msg string) *Error {
	e := &Error{Connector: connector, Status: status, Message: msg, RetryAfter: retryAfter}
	switch {
	case status == 429:
		e.Code, e.Retryable = CodeRateLimited, true
	case status >= 500:
		e.Code, e.Retryable = CodeServer, true
	case status == 401 || status == 403:
		e.Code = CodeAuth
	case status == 404:
		e.Code = CodeNotFound
	default:
		e.Code = CodeBadRequest
	}
	return e
}

// ParseRetryAfter reads a Retry-After header value (seconds or an HTTP date).
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// MessageID reads the message id from a send's result data ({"message_id"}): a
// wamid, or a Telegram message id, which may have been decoded as a number; ""
// when there is none.
func MessageID(data map[string]any) string {
	switch v := data["message_id"].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// ConnectorOf names the connector that performs an action kind ("send" goes to
// the dialog's channel), for logs and metrics: "okdesk.comment" → "okdesk".
func ConnectorOf(kind, channel string) string {
	if kind == KindFetch {
		return "file"
	}
	if kind == "send" {
		if channel == "" {
			return "none"
		}
		return channel
	}
	if i := strings.IndexByte(kind, '.'); i > 0 {
		return kind[:i]
	}
	return kind
}

// Executor performs outbound actions of the kinds it declares.
type Executor interface {
	// Kinds lists the action kinds this executor performs, e.g. "okdesk.create_issue".
	// The "send" kind is special: it is dispatched by the dialog's channel (see Sender).
	Kinds() []string
	Execute(ctx context.Context, req Request) (Result, error)
}

// Sender delivers the "send" action on one channel ("waba" or "telegram").
type Sender interface {
	Channel() string
	Execute(ctx context.Context, req Request) (Result, error)
}

// Registry maps action kinds to executors and channels to senders, and keeps
// what the described ones say about themselves, in the order they were
// registered.
type Registry struct {
	kinds    map[string]Executor
	senders  map[string]Sender
	fetchers map[string]Fetcher
	specs    []ActionSpec
	channels []Channel
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{kinds: map[string]Executor{}, senders: map[string]Sender{}, fetchers: map[string]Fetcher{}}
}

// Register adds an executor for each of its kinds; a kind registered twice is a
// programmer error reported at start-up.
func (r *Registry) Register(e Executor) error {
	if err := checkDescribed(e); err != nil {
		return err
	}
	for _, k := range e.Kinds() {
		if _, dup := r.kinds[k]; dup {
			return fmt.Errorf("connectors: action kind %q registered twice", k)
		}
	}
	for _, k := range e.Kinds() {
		r.kinds[k] = e
	}
	if d, ok := e.(Describer); ok {
		r.specs = append(r.specs, d.Actions()...)
	}
	return nil
}

// RegisterSender adds the sender of one channel.
func (r *Registry) RegisterSender(s Sender) error {
	if _, dup := r.senders[s.Channel()]; dup {
		return fmt.Errorf("connectors: sender for channel %q registered twice", s.Channel())
	}
	r.senders[s.Channel()] = s
	if l, ok := s.(Limited); ok {
		r.channels = append(r.channels, l.Describe())
	}
	return nil
}

// RegisterFetcher adds the fetcher of one source's files (see KindFetch).
func (r *Registry) RegisterFetcher(f Fetcher) error {
	if _, dup := r.fetchers[f.Source()]; dup {
		return fmt.Errorf("connectors: fetcher for %q registered twice", f.Source())
	}
	r.fetchers[f.Source()] = f
	return nil
}

// Actions returns the specs of the registered actions: "send" first when a
// sender is registered, then the described executors' in registration order.
func (r *Registry) Actions() []ActionSpec {
	var out []ActionSpec
	if len(r.senders) > 0 {
		out = append(out, SendSpec)
	}
	return append(out, r.specs...)
}

// Channels returns the described senders' channels in registration order.
func (r *Registry) Channels() []Channel {
	return append([]Channel(nil), r.channels...)
}

// Kinds lists the registered action kinds, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Execute runs req with the executor of its kind ("send" goes to the dialog's channel).
func (r *Registry) Execute(ctx context.Context, req Request) (Result, error) {
	if req.Kind == "send" {
		s, ok := r.senders[req.Dialog.Channel]
		if !ok {
			return Result{}, &Error{Connector: req.Dialog.Channel, Code: CodeUnsupported,
				Message: fmt.Sprintf("no sender for channel %q", req.Dialog.Channel)}
		}
		return s.Execute(ctx, req)
	}
	if req.Kind == KindFetch {
		f, err := FetchOf(req.Params)
		if err != nil {
			return Result{}, err
		}
		f.Action = req.ID
		fe, ok := r.fetchers[f.Source]
		if !ok {
			return Result{}, &Error{Connector: f.Source, Code: CodeUnsupported, Message: fmt.Sprintf("no fetcher for files of %q", f.Source)}
		}
		files, err := fe.Fetch(ctx, f)
		if err != nil {
			return Result{}, err
		}
		return FilesResult(files), nil
	}
	e, ok := r.kinds[req.Kind]
	if !ok {
		return Result{}, &Error{Code: CodeUnsupported, Message: fmt.Sprintf("no executor for action %q", req.Kind)}
	}
	return e.Execute(ctx, req)
}
