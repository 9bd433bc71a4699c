package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Controls performs the operators' controls: the processor does, in the
// dialog's order (see processor.Processor.Control).
type Controls interface {
	// Control applies a control to a dialog and returns the dialog after it.
	// Errors: store.ErrNotFound, *engine.ErrControl (409, or 422 when Invalid),
	// ErrQueued.
	Control(ctx context.Context, c event.Control) (*store.Dialog, error)
	// RetryAction queues a dead or failed action again (store.ErrNotFound,
	// *engine.ErrControl when it is neither).
	RetryAction(ctx context.Context, id int64, by string) (*store.OutboxItem, error)
	// Redrive routes an unrouted or failed event again (store.ErrNotFound,
	// *engine.ErrControl when it is neither).
	Redrive(ctx context.Context, seq int64, by string) (*store.Event, error)
}

// ErrQueued means a control was stored and will be applied in its dialog's turn;
// the API answers 202.
var ErrQueued = errors.New("the dialog is busy: the control is queued and applied in its turn")

// controlBody is the body of every dialog control; each uses its own fields.
type controlBody struct {
	Reason   string        `json:"reason"`
	State    string        `json:"state"`
	Status   string        `json:"status"`
	Text     string        `json:"text"`
	Template *templateBody `json:"template"`
}

type templateBody struct {
	Name     string   `json:"name"`
	Language string   `json:"language"`
	Params   []string `json:"params"`
}

// control handles POST /api/v1/dialogs/{id}/<control>.
func (s *Server) control(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.cfg.Controls == nil {
			fail(c, http.StatusNotImplemented, "the dialog controls are not available in this server")
			return
		}
		id, ok := s.idParam(c, "dialog")
		if !ok {
			return
		}
		var b controlBody
		if !s.bindControl(c, kind, &b) {
			return
		}
		d, err := s.applyControl(c.Request.Context(), who(c), kind, id, &b)
		var bad *badControl
		if errors.As(err, &bad) {
			s.failInput(c, http.StatusUnprocessableEntity, bad.msg)
			return
		}
		if err != nil {
			s.controlError(c, "dialog", id, err)
			return
		}
		c.JSON(http.StatusOK, toDialogJSON(d))
	}
}

// badControl is a control whose body lacks a field it needs or has a wrong one.
type badControl struct{ msg string }

func (e *badControl) Error() string { return e.msg }

// applyControl checks a control's body and has the processor apply it to dialog
// id, on behalf of p: the one path of the admin API and the console. Errors:
// *badControl (422) and those of Controls.Control (see controlOutcome).
func (s *Server) applyControl(ctx context.Context, p principal, kind string, id int64, b *controlBody) (*store.Dialog, error) {
	ctl := event.Control{Kind: kind, DialogID: id, Operator: p.name, Reason: strings.TrimSpace(b.Reason),
		State: strings.TrimSpace(b.State), Status: b.Status, Text: b.Text}
	if msg := checkBody(kind, b, &ctl); msg != "" {
		return nil, &badControl{msg}
	}
	return s.cfg.Controls.Control(ctx, ctl)
}

// checkBody checks the fields a control needs and copies the template; it
// returns what is wrong, or "".
func checkBody(kind string, b *controlBody, ctl *event.Control) string {
	switch kind {
	case event.ControlTakeover, event.ControlGoto, event.ControlClose:
		if ctl.Reason == "" {
			return `missing field "reason": say why, for the dialog's history`
		}
	}
	if n := utf8.RuneCountInString(ctl.Reason); n > maxReasonChars {
		return fmt.Sprintf(`invalid field "reason": %d characters, the limit is %d`, n, maxReasonChars)
	}
	switch kind {
	case event.ControlGoto:
		if ctl.State == "" {
			return `missing field "state": the state to move the dialog to`
		}
	case event.ControlClose:
		if b.Status != "finished" && b.Status != "abandoned" {
			return fmt.Sprintf(`invalid field "status": %q is not finished or abandoned`, b.Status)
		}
	case event.ControlMessage:
		switch n := utf8.RuneCountInString(b.Text); {
		case n > maxMessageChars:
			return fmt.Sprintf(`invalid field "text": %d characters, more than a message takes (%d)`, n, maxMessageChars)
		case b.Template == nil && strings.TrimSpace(b.Text) == "":
			return `missing field "text" (or "template"): what to write to the customer`
		case b.Template != nil && b.Text != "":
			return `give either "text" or "template", not both`
		case b.Template != nil && (b.Template.Name == "" || b.Template.Language == ""):
			return `invalid field "template": it needs "name" and "language" (and "params", a list of strings, when the template has any)`
		case b.Template != nil:
			params := make([]any, len(b.Template.Params))
			for i, p := range b.Template.Params {
				params[i] = p
			}
			ctl.Template = map[string]any{"name": b.Template.Name, "language": b.Template.Language, "params": params}
		}
	}
	return ""
}

// controlFields are the body fields each control takes.
var controlFields = map[string][]string{
	event.ControlTakeover: {"reason"},
	event.ControlHandback: {"state", "reason"},
	event.ControlMessage:  {"text", "template"},
	event.ControlGoto:     {"state", "reason"},
	event.ControlClose:    {"status", "reason"},
}

// Limits of a control's texts: what the operator writes to the customer is held to
// the smaller of the channels' text limits (the connectors would cut it), a reason
// to a line of history.
var (
	maxMessageChars = min(waba.Limits.Text, telegram.Limits.Text)
	maxReasonChars  = 500
)

// bindControl reads a control's JSON body (it may be empty): one JSON object
// (400 otherwise) of the fields this kind of control takes (422 otherwise).
func (s *Server) bindControl(c *gin.Context, kind string, b *controlBody) bool {
	raw, ok := s.readAdminBody(c)
	if !ok {
		return false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return true
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		s.failInput(c, http.StatusBadRequest, "the body is not a JSON object of the control's fields")
		return false
	}
	if dec.More() {
		fail(c, http.StatusBadRequest, "unexpected data after the body's JSON object")
		return false
	}
	allowed := controlFields[kind]
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(allowed, name) {
			s.failInput(c, http.StatusUnprocessableEntity, fmt.Sprintf("unknown field %q: a %s takes %s", name, kind, strings.Join(allowed, ", ")))
			return false
		}
	}
	dec = json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(b); err != nil {
		msg := "the body is not a JSON object of the control's fields"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("invalid field %q: want a JSON %s, not %s", te.Field, jsonType(te.Type), te.Value)
		}
		s.failInput(c, http.StatusBadRequest, msg)
		return false
	}
	return true
}

// jsonType names the JSON type a Go type is read from.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	}
	return "number"
}

// idParam reads the path's {id}: a positive integer, 400 otherwise.
func (s *Server) idParam(c *gin.Context, what string) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		fail(c, http.StatusBadRequest, what+" id must be a positive integer")
		return 0, false
	}
	return id, true
}

// controlOutcome says how a control's error is answered: 404, 409, 422 or 202
// with a message, or 500 with "" for an infrastructure failure (logged by the
// caller, never shown).
func controlOutcome(what string, id int64, err error) (int, string) {
	var ce *engine.ErrControl
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, fmt.Sprintf("no %s %d", what, id)
	case errors.As(err, &ce) && ce.Invalid:
		return http.StatusUnprocessableEntity, ce.Msg
	case errors.As(err, &ce):
		return http.StatusConflict, ce.Msg
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, fmt.Sprintf("the %s changed meanwhile: look again and retry", what)
	case errors.Is(err, ErrQueued):
		return http.StatusAccepted, ErrQueued.Error()
	}
	return http.StatusInternalServerError, ""
}

// controlError answers a control's error: 404, 409, 422 or 202.
func (s *Server) controlError(c *gin.Context, what string, id int64, err error) {
	switch status, msg := controlOutcome(what, id, err); status {
	case http.StatusAccepted:
		c.JSON(http.StatusAccepted, gin.H{"status": "queued", "message": msg})
	case http.StatusInternalServerError:
		s.logger(c).Error("operator control", "what", what, "id", id, "err", err)
		fail(c, http.StatusInternalServerError, "the control failed on the server's side (its log says why); try again")
	default:
		fail(c, status, msg)
	}
}

// retryAction handles POST /api/v1/outbox/{id}/retry.
func (s *Server) retryAction(c *gin.Context) {
	if s.cfg.Controls == nil {
		fail(c, http.StatusNotImplemented, "the controls are not available in this server")
		return
	}
	id, ok := s.idParam(c, "outbox item")
	if !ok {
		return
	}
	it, err := s.cfg.Controls.RetryAction(c.Request.Context(), id, who(c).name)
	if err != nil {
		s.controlError(c, "outbox item", id, err)
		return
	}
	c.JSON(http.StatusOK, toOutboxJSON(it))
}

// redrive handles POST /api/v1/events/{id}/redrive.
func (s *Server) redrive(c *gin.Context) {
	if s.cfg.Controls == nil {
		fail(c, http.StatusNotImplemented, "the controls are not available in this server")
		return
	}
	seq, ok := s.idParam(c, "event")
	if !ok {
		return
	}
	ev, err := s.cfg.Controls.Redrive(c.Request.Context(), seq, who(c).name)
	if err != nil {
		s.controlError(c, "event", seq, err)
		return
	}
	c.JSON(http.StatusOK, toEventJSON(*ev))
}
