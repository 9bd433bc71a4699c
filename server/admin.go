package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/gin-gonic/gin"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Allowed values of the admin filters.
var (
	eventSources   = event.Sources
	eventStatuses  = names(store.EventStatuses)
	dialogStatuses = names(dialog.Statuses)
	outboxStatuses = names(store.OutboxStatuses)
	// injectSources are the sources POST /api/v1/events takes: an operator's control
	// goes through the dialog's control endpoints instead.
	injectSources = slices.DeleteFunc(slices.Clone(event.Sources), func(s string) bool { return s == event.SourceOperator })
)

// names spells a list of words of the store's vocabulary as strings.
func names[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// ---- flows and reload ----

type flowJSON struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	File        string   `json:"file"`
	Hash        string   `json:"hash"`
	States      []string `json:"states"`
	Start       []string `json:"start"`
	Priority    int      `json:"priority"`
}

type reloadJSON struct {
	At          *time.Time          `json:"at"`
	Result      string              `json:"result"`
	DryRun      bool                `json:"dry_run,omitempty"`
	Diagnostics []engine.Diagnostic `json:"diagnostics"`
	Added       []string            `json:"added"`
	Changed     []string            `json:"changed"`
	Removed     []string            `json:"removed"`
	// Stranded and Migrated count live dialogs by flow and state: those a reload
	// refuses to strand, and those it moves (or would move) to a new version.
	Stranded []engine.StateCount `json:"stranded"`
	Migrated []engine.StateCount `json:"migrated"`
}

func toReloadJSON(r engine.ReloadReport) reloadJSON {
	out := reloadJSON{
		Result:      r.Result,
		Diagnostics: nonNil(r.Diagnostics),
		Added:       nonNil(r.Added),
		Changed:     nonNil(r.Changed),
		Removed:     nonNil(r.Removed),
		DryRun:      r.DryRun,
		Stranded:    nonNil(r.Stranded),
		Migrated:    nonNil(r.Migrated),
	}
	if !r.At.IsZero() {
		at := r.At.UTC()
		out.At = &at
	}
	return out
}

// flowsAnswer is GET /api/v1/flows: the list shape of every admin list (the whole
// flow set is one page, so next is always null) and the report of the last reload.
type flowsAnswer struct {
	listAnswer[flowJSON]
	Reload reloadJSON `json:"reload"`
}

func (s *Server) listFlows(c *gin.Context) {
	flows := []flowJSON{}
	if set := s.cfg.Flows.Current(); set != nil {
		for _, f := range set.Flows() {
			flows = append(flows, flowJSON{
				Name: f.Name, Description: f.Description, File: f.File, Hash: f.Hash,
				States: nonNil(f.StateNames), Start: nonNil(f.StartOn), Priority: f.Priority,
			})
		}
	}
	c.JSON(http.StatusOK, flowsAnswer{listAnswer: listAnswer[flowJSON]{Items: flows}, Reload: toReloadJSON(s.cfg.Flows.Last())})
}

// reload re-reads the flows: 200 with the report when they loaded (or did not
// change), 422 with the report and an error when any file has an error or the
// set would strand live dialogs. With ?dry_run=true it only says what a reload
// would do: the report, with nothing swapped.
func (s *Server) reload(c *gin.Context) {
	dry := false
	if v := c.Query("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.failInput(c, http.StatusBadRequest, fmt.Sprintf("dry_run=%q: want true or false", v))
			return
		}
		dry = b
	}
	rep := toReloadJSON(s.cfg.Reload(dry))
	if rep.Result != engine.ReloadError {
		c.JSON(http.StatusOK, rep)
		return
	}
	msg := fmt.Sprintf("flows not reloaded: %d error(s); the previous flow set keeps serving", countErrors(rep.Diagnostics))
	if dry {
		msg = fmt.Sprintf("a reload would be refused: %d error(s)", countErrors(rep.Diagnostics))
	}
	c.Set(ctxKeyErrorMsg, msg)
	c.JSON(http.StatusUnprocessableEntity, struct {
		Error string `json:"error"`
		reloadJSON
	}{msg, rep})
}

func countErrors(ds []engine.Diagnostic) int {
	n := 0
	for _, d := range ds {
		if d.Severity == engine.SevError {
			n++
		}
	}
	return n
}

// ---- dialogs ----

type dialogJSON struct {
	ID        int64          `json:"id"`
	Flow      string         `json:"flow"`
	FlowHash  string         `json:"flow_hash"`
	State     string         `json:"state"`
	Status    string         `json:"status"`
	Vars      map[string]any `json:"vars"`
	Channel   string         `json:"channel"`
	ContactID string         `json:"contact_id"`
	Phone     string         `json:"phone"`
	// BusinessNumber is the WhatsApp number (phone_number_id) the customer wrote to.
	BusinessNumber string    `json:"business_number"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Revision       int64     `json:"revision"`
}

func toDialogJSON(d *store.Dialog) dialogJSON {
	vars := d.Vars
	if vars == nil {
		vars = map[string]any{}
	}
	return dialogJSON{
		ID: d.ID, Flow: d.Flow, FlowHash: d.FlowHash, State: d.State, Status: string(d.Status), Vars: vars,
		Channel: d.Channel, ContactID: d.ContactID, Phone: d.Phone, BusinessNumber: d.BusinessNumber,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), Revision: d.Revision,
	}
}

type keyJSON struct {
	Key    string `json:"key"`
	Active bool   `json:"active"`
}

type historyJSON struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Kind    string          `json:"kind"`
	EventID *string         `json:"event_id"`
	From    string          `json:"from"`
	To      string          `json:"to"`
	Detail  json.RawMessage `json:"detail"`
}

type timerJSON struct {
	ID     int64     `json:"id"`
	State  string    `json:"state"`
	Name   string    `json:"name"`
	DueAt  time.Time `json:"due_at"`
	Status string    `json:"status"`
}

type dialogDetailJSON struct {
	dialogJSON
	Keys    []keyJSON     `json:"keys"`
	History []historyJSON `json:"history"`
	Timers  []timerJSON   `json:"timers"`
	// Actions are the dialog's outbound actions with their outcomes, newest first.
	Actions []outboxJSON `json:"actions"`
}

func (s *Server) listDialogs(c *gin.Context) {
	page, ok := s.pageOf(c)
	if !ok {
		return
	}
	status, ok := s.oneOf(c, "status", dialogStatuses)
	if !ok {
		return
	}
	f := store.DialogFilter{Flow: c.Query("flow"), State: c.Query("state"), Status: dialog.Status(status), Key: c.Query("key")}
	rows, next, err := s.cfg.Store.ListDialogs(c.Request.Context(), f, page)
	if !s.listOK(c, "list dialogs", err) {
		return
	}
	items := make([]dialogJSON, len(rows))
	for i := range rows {
		items[i] = toDialogJSON(&rows[i])
	}
	answerList(c, items, next)
}

func (s *Server) getDialog(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		fail(c, http.StatusBadRequest, "dialog id must be a positive integer")
		return
	}
	ctx := c.Request.Context()
	d, err := s.cfg.Store.GetDialog(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		fail(c, http.StatusNotFound, fmt.Sprintf("dialog %d not found", id))
		return
	}
	if err != nil {
		s.internal(c, "get dialog", err, "dialog_id", id)
		return
	}
	keys, err := s.cfg.Store.DialogKeys(ctx, id)
	if err != nil {
		s.internal(c, "get dialog keys", err, "dialog_id", id)
		return
	}
	hist, err := s.cfg.Store.DialogHistory(ctx, id)
	if err != nil {
		s.internal(c, "get dialog history", err, "dialog_id", id)
		return
	}
	timers, err := s.cfg.Store.DialogTimers(ctx, id)
	if err != nil {
		s.internal(c, "get dialog timers", err, "dialog_id", id)
		return
	}
	actions, _, err := s.cfg.Store.ListOutbox(ctx, store.OutboxFilter{DialogID: id}, store.Page{Limit: store.MaxLimit})
	if err != nil {
		s.internal(c, "get dialog actions", err, "dialog_id", id)
		return
	}
	out := dialogDetailJSON{
		dialogJSON: toDialogJSON(d),
		Actions:    make([]outboxJSON, len(actions)),
		Keys:       make([]keyJSON, len(keys)),
		History:    make([]historyJSON, len(hist)),
		Timers:     make([]timerJSON, len(timers)),
	}
	for i, k := range keys {
		out.Keys[i] = keyJSON{Key: k.Key, Active: k.Active}
	}
	for i, h := range hist {
		out.History[i] = historyJSON{ID: h.ID, At: h.At.UTC(), Kind: string(h.Kind), EventID: seqString(h.EventSeq),
			From: h.FromState, To: h.ToState, Detail: rawOrNull(h.Detail)}
	}
	for i, t := range timers {
		out.Timers[i] = timerJSON{ID: t.ID, State: t.State, Name: t.Name, DueAt: t.DueAt.UTC(), Status: string(t.Status)}
	}
	for i := range actions {
		out.Actions[i] = toOutboxJSON(&actions[i])
	}
	c.JSON(http.StatusOK, out)
}

// ---- events ----

type eventJSON struct {
	ID         string         `json:"id"`
	Source     string         `json:"source"`
	Type       string         `json:"type"`
	At         time.Time      `json:"at"`
	ReceivedAt time.Time      `json:"received_at"`
	DedupeKey  string         `json:"dedupe_key"`
	Keys       []string       `json:"keys"`
	Contact    event.Contact  `json:"contact"`
	Text       string         `json:"text"`
	Data       map[string]any `json:"data"`
	Status     string         `json:"status"`
	DialogID   *int64         `json:"dialog_id"`
	Error      string         `json:"error"`
	Attempts   int            `json:"attempts"`
	// Deliveries lists every dialog the event was applied to when an alongside
	// flow took it besides (or instead of) the ordinary routing; absent otherwise.
	Deliveries []eventDeliveryJSON `json:"deliveries,omitempty"`
}

// eventDeliveryJSON is one (event, dialog) application of an event.
type eventDeliveryJSON struct {
	DialogID  int64     `json:"dialog_id"`
	Flow      string    `json:"flow"`
	Alongside bool      `json:"alongside"`
	Status    string    `json:"status"`
	Started   bool      `json:"started"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
}

func toEventJSON(e store.Event) eventJSON {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	return eventJSON{
		ID: strconv.FormatInt(e.Seq, 10), Source: e.Source, Type: e.Type, At: e.At.UTC(), ReceivedAt: e.ReceivedAt.UTC(),
		DedupeKey: e.DedupeKey, Keys: nonNil(e.Keys), Contact: e.Contact, Text: e.Text, Data: data,
		Status: string(e.Status), DialogID: e.DialogID, Error: e.Error, Attempts: e.Attempts,
		Deliveries: toDeliveriesJSON(e.Deliveries),
	}
}

func toDeliveriesJSON(ds []store.EventDelivery) []eventDeliveryJSON {
	if len(ds) == 0 {
		return nil
	}
	out := make([]eventDeliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = eventDeliveryJSON{DialogID: d.DialogID, Flow: d.Flow, Alongside: d.Scope != "", Status: string(d.Status),
			Started: d.Started, Error: d.Error, At: d.At.UTC()}
	}
	return out
}

func (s *Server) listEvents(c *gin.Context) {
	page, ok := s.pageOf(c)
	if !ok {
		return
	}
	source, ok := s.oneOf(c, "source", eventSources)
	if !ok {
		return
	}
	status, ok := s.oneOf(c, "status", eventStatuses)
	if !ok {
		return
	}
	rows, next, err := s.cfg.Store.ListEvents(c.Request.Context(), store.EventFilter{Source: source, Status: store.EventStatus(status)}, page)
	if !s.listOK(c, "list events", err) {
		return
	}
	items := make([]eventJSON, len(rows))
	for i, e := range rows {
		items[i] = toEventJSON(e)
	}
	answerList(c, items, next)
}

// injectEvent stores one normalized event as if a webhook had delivered it.
func (s *Server) injectEvent(c *gin.Context) {
	body, ok := s.readAdminBody(c)
	if !ok {
		return
	}
	var ev event.Event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		s.failInput(c, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	if dec.More() {
		fail(c, http.StatusBadRequest, "bad JSON: unexpected data after the event object")
		return
	}
	if msg := s.normalizeInjected(&ev); msg != "" {
		s.failInput(c, http.StatusBadRequest, msg)
		return
	}
	res, ok := s.appendEvents(c, ev.Source, []event.Event{ev})
	if !ok {
		fail(c, http.StatusServiceUnavailable, "could not store the event, retry later")
		return
	}
	s.logger(c).Info("event injected", "source", ev.Source, "type", ev.Type, "event_id", res[0].Seq,
		"dedupe_key", ev.DedupeKey, "duplicate", res[0].Duplicate)
	c.JSON(http.StatusOK, gin.H{"id": strconv.FormatInt(res[0].Seq, 10), "duplicate": res[0].Duplicate})
}

// normalizeInjected checks an injected event and fills its defaults; it returns the
// 400 message naming the bad field, or "".
func (s *Server) normalizeInjected(ev *event.Event) string {
	ev.Source = strings.TrimSpace(ev.Source)
	ev.Type = strings.TrimSpace(ev.Type)
	switch {
	case ev.Source == "":
		return `missing required field "source"`
	case !slices.Contains(injectSources, ev.Source):
		return fmt.Sprintf(`invalid field "source": %q is not one of %s`, ev.Source, strings.Join(injectSources, ", "))
	case ev.Type == "":
		return `missing required field "type"`
	case ev.Type != ev.Source && !strings.HasPrefix(ev.Type, ev.Source+"."):
		return fmt.Sprintf(`invalid field "type": %q is not an event type of source %q (expected %q or %q)`,
			ev.Type, ev.Source, ev.Source, ev.Source+".<name>")
	}
	ev.ID = "" // the store assigns it
	if ev.DedupeKey == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		ev.DedupeKey = "inject:" + hex.EncodeToString(b[:])
	}
	if ev.At.IsZero() {
		ev.At = s.now().UTC()
	}
	if ev.Keys == nil {
		ev.Keys = []string{}
	}
	if ev.Data == nil {
		ev.Data = map[string]any{}
	}
	return ""
}

// readAdminBody reads an admin request body up to Config.MaxBody bytes.
func (s *Server) readAdminBody(c *gin.Context) ([]byte, bool) {
	tooLarge := fmt.Sprintf("request body too large: the limit is %d bytes", s.cfg.MaxBody)
	if c.Request.ContentLength > s.cfg.MaxBody {
		fail(c, http.StatusRequestEntityTooLarge, tooLarge)
		return nil, false
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBody)); err != nil {
		var tl *http.MaxBytesError
		if errors.As(err, &tl) {
			fail(c, http.StatusRequestEntityTooLarge, tooLarge)
		} else {
			fail(c, http.StatusBadRequest, "read request body: "+err.Error())
		}
		return nil, false
	}
	return buf.Bytes(), true
}

// ---- outbox ----

type outboxJSON struct {
	ID        int64           `json:"id"`
	DialogID  *int64          `json:"dialog_id"`
	Kind      string          `json:"kind"`
	Params    json.RawMessage `json:"params"`
	Status    string          `json:"status"`
	Attempts  int             `json:"attempts"`
	NextAt    time.Time       `json:"next_at"`
	LastError string          `json:"last_error"`
	ErrorCode string          `json:"error_code"`
	Result    json.RawMessage `json:"result"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// Requeues counts the times an operator queued the item again.
	Requeues int `json:"requeues"`
	// Delivery is the message a send made and how far it got; null for other
	// actions and before the send.
	Delivery *deliveryJSON `json:"delivery"`
}

type deliveryJSON struct {
	MessageID string    `json:"message_id"`
	Status    string    `json:"status"`
	ErrorCode string    `json:"error_code,omitempty"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
}

func (s *Server) listOutbox(c *gin.Context) {
	page, ok := s.pageOf(c)
	if !ok {
		return
	}
	status, ok := s.oneOf(c, "status", outboxStatuses)
	if !ok {
		return
	}
	f := store.OutboxFilter{Status: store.OutboxStatus(status)}
	if raw, given := c.GetQuery("dialog"); given {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			fail(c, http.StatusBadRequest, "dialog must be a positive integer (a dialog id)")
			return
		}
		f.DialogID = id
	}
	rows, next, err := s.cfg.Store.ListOutbox(c.Request.Context(), f, page)
	if !s.listOK(c, "list outbox", err) {
		return
	}
	items := make([]outboxJSON, len(rows))
	for i := range rows {
		items[i] = toOutboxJSON(&rows[i])
	}
	answerList(c, items, next)
}

func toOutboxJSON(o *store.OutboxItem) outboxJSON {
	return outboxJSON{
		ID: o.ID, DialogID: o.DialogID, Kind: o.Kind, Params: rawOrNull(o.Params), Status: string(o.Status),
		Attempts: o.Attempts, NextAt: o.NextAt.UTC(), LastError: o.LastError, ErrorCode: o.ErrorCode,
		Result: rawOrNull(o.Result), CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(), Requeues: o.Requeues,
		Delivery: toDeliveryJSON(o.Delivery),
	}
}

func toDeliveryJSON(d store.Delivery) *deliveryJSON {
	if d.Status == "" {
		return nil
	}
	return &deliveryJSON{MessageID: d.MessageID, Status: string(d.Status), ErrorCode: d.Code, Error: d.Error, At: d.At.UTC()}
}

// ---- helpers ----

// pageOf reads limit and cursor: limit defaults to store.DefaultLimit, values above
// store.MaxLimit are cut to it, anything that is not a positive integer is a 400.
func (s *Server) pageOf(c *gin.Context) (store.Page, bool) {
	p := store.Page{Limit: store.DefaultLimit, Cursor: c.Query("cursor")}
	if raw, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(raw)
		var ne *strconv.NumError
		switch {
		case err == nil && n >= 1:
			p.Limit = min(n, store.MaxLimit)
		case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) && raw[0] != '-':
			p.Limit = store.MaxLimit // a huge number is cut like any large one
		default:
			s.failInput(c, http.StatusBadRequest, fmt.Sprintf("limit must be a positive integer (at most %d is used), got %.20q", store.MaxLimit, raw))
			return p, false
		}
	}
	return p, true
}

// oneOf reads an optional query parameter that must be one of allowed.
func (s *Server) oneOf(c *gin.Context, name string, allowed []string) (string, bool) {
	v := c.Query(name)
	if v == "" || slices.Contains(allowed, v) {
		return v, true
	}
	s.failInput(c, http.StatusBadRequest, fmt.Sprintf("%s must be one of %s, got %.40q", name, strings.Join(allowed, ", "), v))
	return "", false
}

// listOK answers the error of a list call, if any: 400 for a bad cursor, 500 otherwise.
func (s *Server) listOK(c *gin.Context, what string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrBadCursor):
		fail(c, http.StatusBadRequest, "invalid cursor: pass the next value of the previous page unchanged")
	default:
		s.internal(c, what, err)
	}
	return false
}

// internal logs an infrastructure error and answers 500 without its details.
func (s *Server) internal(c *gin.Context, what string, err error, attrs ...any) {
	s.logger(c).Error(what, append(attrs, "err", err)...)
	fail(c, http.StatusInternalServerError, "internal error")
}

// listAnswer is every admin list: {"items": [...], "next": cursor-or-null}.
type listAnswer[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

func answerList[T any](c *gin.Context, items []T, next string) {
	a := listAnswer[T]{Items: items}
	if next != "" {
		a.Next = &next
	}
	c.JSON(http.StatusOK, a)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// rawOrNull passes a stored JSON document through: empty is null, and anything that
// is not valid JSON is answered as a JSON string rather than breaking the answer.
func rawOrNull(r json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(r)) == 0 {
		return json.RawMessage("null")
	}
	if !json.Valid(r) {
		b, _ := json.Marshal(string(r)) // a string always encodes
		return b
	}
	return r
}

func seqString(p *int64) *string {
	if p == nil {
		return nil
	}
	s := strconv.FormatInt(*p, 10)
	return &s
}
