package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
)

// DefaultStartText is where the fake clock starts unless a scenario says otherwise.
const DefaultStartText = "2026-11-29T10:00:00+03:00"

// DefaultStart returns DefaultStartText as a time.
func DefaultStart() time.Time {
	t, err := time.Parse(time.RFC3339, DefaultStartText)
	if err != nil {
		panic(err) // a constant that does not parse is a programmer error
	}
	return t
}

// Window is WhatsApp's customer-service window (connectors/waba.Window).
const Window = 24 * time.Hour

// Options configure a World.
type Options struct {
	Start    time.Time      // the fake clock's start; DefaultStart() when zero
	Env      map[string]any // the FLOW_* variables flows read as env
	Coverage *Coverage      // when set, records the states and branches the world reaches
}

// Dialog is one dialog of the world: the interpreter's view plus its history.
type Dialog struct {
	engine.Dialog
	FlowDef *engine.Flow
	History []engine.HistoryEntry
}

// Issue returns the Okdesk issue id the dialog is bound to (its last
// okdesk:issue:<id> key), or "".
func (d *Dialog) Issue() string {
	for i := len(d.Keys) - 1; i >= 0; i-- {
		if id, ok := strings.CutPrefix(d.Keys[i], "okdesk:issue:"); ok {
			return id
		}
	}
	return ""
}

// Outcome says what became of one processed event.
type Outcome string

// Outcomes of an event.
const (
	OutcomeHandled   Outcome = "handled"   // a handler took it (whether or not a branch held)
	OutcomeIgnored   Outcome = "ignored"   // the state ignores it (ignore:, action.done, stale timer)
	OutcomeUnhandled Outcome = "unhandled" // the state has no handler for it: recorded
	OutcomeUnrouted  Outcome = "unrouted"  // no dialog claimed it and no flow started on it
	OutcomeFailed    Outcome = "failed"    // a runtime error: the dialog is unchanged
	OutcomeHeld      Outcome = "held"      // the dialog is with a human: kept in history only
	OutcomeDuplicate Outcome = "duplicate" // same dedupe key as an earlier event: dropped
)

// outcomes lists every Outcome.
var outcomes = []Outcome{OutcomeHandled, OutcomeIgnored, OutcomeUnhandled, OutcomeUnrouted, OutcomeFailed, OutcomeHeld, OutcomeDuplicate}

// Processed is one event the world processed and what it did.
type Processed struct {
	Event    event.Event
	Dialog   string // dialog id; "" when unrouted
	Flow     string
	Started  bool // the event started the dialog
	Outcome  Outcome
	From, To string // the dialog's state before and after
	Status   string // the dialog's status after
	Err      error  // the runtime error, with OutcomeFailed
	Logs     []string
	Notes    []string // start guards that failed, keys that could not be bound
	History  []engine.HistoryEntry
	Actions  []*Action // the outbound actions the step asked for, in order
	// Completed is the pending action whose result this event is (World.Complete),
	// asked for in an earlier step; nil for every other event.
	Completed *Action
}

// Failure is the typed error of a failed action, as action.failed carries it.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"status"`
}

// Action is one outbound action and its outcome.
type Action struct {
	ID      string
	Dialog  string
	Kind    string
	Params  map[string]any
	State   string
	Pos     engine.Pos
	Result  map[string]any // on success
	Failure *Failure       // on failure
	Message *Message       // for send: what the customer got (or would have)
	// Pending: a pending mock held the result back; the action had no result in
	// the step that asked for it, and gets one when World.Complete delivers it.
	Pending bool
}

// answered reports whether the action has its result (or failure).
func (a *Action) answered() bool { return a.Result != nil || a.Failure != nil }

// Message is a send as the customer sees it.
type Message struct {
	Channel    string
	To         string
	Text       string
	Header     string
	Footer     string
	Buttons    []Choice
	ListButton string
	Rows       []Choice
	Template   *Template
	Via        string // text, buttons, list, template, fallback_template
}

// Choices returns the buttons or list rows the customer may tap.
func (m *Message) Choices() []Choice {
	if len(m.Buttons) > 0 {
		return m.Buttons
	}
	return m.Rows
}

// Choice is one reply button or list row.
type Choice struct {
	ID, Title, Description string
}

// Template is a WhatsApp template message.
type Template struct {
	Name, Language string
	Params         []string
}

// Report is what happened while the world handled one input: every event processed
// (the input first, then the timers and action results it led to), in order.
type Report struct {
	Events []*Processed
}

// Actions returns every action asked for, in order, including pending ones (and
// not the earlier pending actions whose results the report delivered).
func (r *Report) Actions() []*Action {
	var out []*Action
	for _, p := range r.Events {
		out = append(out, p.Actions...)
	}
	return out
}

// answered returns the actions whose results came in the report, in order: a
// completed pending action first, then those its event led to; pending ones are
// left out (their results come in a later report).
func (r *Report) answered() []*Action {
	var out []*Action
	for _, p := range r.Events {
		if p.Completed != nil {
			out = append(out, p.Completed)
		}
		for _, a := range p.Actions {
			if !a.Pending {
				out = append(out, a)
			}
		}
	}
	return out
}

// Sent returns the messages delivered, in order. A pending send is delivered when
// its result comes.
func (r *Report) Sent() []*Message {
	var out []*Message
	for _, a := range r.answered() {
		if a.Kind == "send" && a.Failure == nil && a.Message != nil {
			out = append(out, a.Message)
		}
	}
	return out
}

// Failed returns the actions that failed, in order (a pending action fails when
// its failure comes).
func (r *Report) Failed() []*Action {
	var out []*Action
	for _, a := range r.answered() {
		if a.Failure != nil {
			out = append(out, a)
		}
	}
	return out
}

// Errors returns the runtime errors of the report's steps.
func (r *Report) Errors() []error {
	var out []error
	for _, p := range r.Events {
		if p.Err != nil {
			out = append(out, p.Err)
		}
	}
	return out
}

type pendingTimer struct {
	id     int
	dialog string
	state  string
	name   string
	due    time.Time
}

// World is the simulated pipeline. It is not safe for concurrent use.
type World struct {
	flows *engine.FlowSet
	m     *engine.Machine
	now   time.Time
	mocks *Mocks
	cov   *Coverage

	dialogs []*Dialog
	byID    map[string]*Dialog
	keys    map[string]*Dialog
	timers  []*pendingTimer
	pending []*Action            // actions whose results a pending mock holds back, oldest first
	lastIn  map[string]time.Time // channel + ":" + contact id → last inbound message
	seen    map[string]bool      // dedupe keys

	nDialog, nEvent, nAction, nTimer, nSend, nIssue, nIn int
}

// NewWorld returns an empty world running the flows of fs.
func NewWorld(fs *engine.FlowSet, opt Options) *World {
	start := opt.Start
	if start.IsZero() {
		start = DefaultStart()
	}
	return &World{flows: fs, m: engine.NewMachine().WithEnv(opt.Env), now: start, mocks: NewMocks(), cov: opt.Coverage,
		byID: map[string]*Dialog{}, keys: map[string]*Dialog{}, lastIn: map[string]time.Time{}, seen: map[string]bool{}}
}

// Now is the fake clock's time.
func (w *World) Now() time.Time { return w.now }

// Mocks is the table that answers outbound actions.
func (w *World) Mocks() *Mocks { return w.mocks }

// Flows is the world's flow set.
func (w *World) Flows() *engine.FlowSet { return w.flows }

// Dialog returns the dialog with the given id, or nil.
func (w *World) Dialog(id string) *Dialog { return w.byID[id] }

// Dialogs returns every dialog, oldest first.
func (w *World) Dialogs() []*Dialog { return w.dialogs }

// DialogByKey returns the live dialog bound to key, or nil.
func (w *World) DialogByKey(key string) *Dialog { return w.keys[key] }

// PendingTimers returns the pending timers of a dialog as "state/name@due", sorted by due time.
func (w *World) PendingTimers(dialog string) []string {
	var out []string
	for _, t := range w.sortedTimers() {
		if t.dialog == dialog {
			out = append(out, fmt.Sprintf("%s/%s@%s", t.state, t.name, t.due.Format(time.RFC3339)))
		}
	}
	return out
}

// Inject processes ev and everything it leads to (action results), and reports it.
func (w *World) Inject(ev event.Event) *Report {
	rep := &Report{}
	w.run(rep, ev)
	return rep
}

// Advance moves the clock forward by d, firing every timer that falls due on the
// way, in due order, each at its due time.
func (w *World) Advance(d time.Duration) *Report {
	target := w.now.Add(d)
	rep := &Report{}
	for {
		ts := w.sortedTimers()
		if len(ts) == 0 || ts[0].due.After(target) {
			break
		}
		t := ts[0]
		w.removeTimer(t.id)
		if t.due.After(w.now) {
			w.now = t.due
		}
		id := strconv.Itoa(t.id)
		w.run(rep, event.Event{Source: event.SourceTimer, Type: event.TypeTimer, At: t.due, DedupeKey: "timer:" + id,
			Data: map[string]any{"timer": t.name, "state": t.state, "timer_id": id, "dialog_id": t.dialog}})
	}
	if target.After(w.now) {
		w.now = target
	}
	return rep
}

// Pending returns the actions whose results are held back, oldest first.
func (w *World) Pending() []*Action { return slices.Clone(w.pending) }

// Complete delivers the result of the oldest pending action of kind, as the
// outbox does when a slow connector call ends: m's result fields merged over the
// default result, or m's failure (m.Pending is ignored). The result event and
// everything it leads to are processed now, at the clock's time. It is an error
// when no action of kind is pending.
func (w *World) Complete(kind string, m Mock) (*Report, error) {
	i := slices.IndexFunc(w.pending, func(a *Action) bool { return a.Kind == kind })
	if i < 0 {
		msg := "no " + kind + " action is pending"
		if len(w.pending) > 0 {
			var others []string
			for _, a := range w.pending {
				others = append(others, a.Kind+" #"+a.ID)
			}
			msg += " (pending: " + strings.Join(others, ", ") + ")"
		}
		return nil, fmt.Errorf("complete %s: %s", kind, msg)
	}
	a := w.pending[i]
	w.pending = slices.Delete(w.pending, i, i+1)
	m.Pending = false
	ev := w.answer(w.byID[a.Dialog], a, &m)
	rep := &Report{}
	w.run(rep, ev)
	rep.Events[0].Completed = a
	return rep, nil
}

// Handback hands a dialog that is with a human back to the bot, as an operator does.
func (w *World) Handback(id string) error {
	d := w.byID[id]
	if d == nil {
		return fmt.Errorf("hand back dialog %s: no such dialog", id)
	}
	if d.Status != engine.StatusHandoff {
		return fmt.Errorf("hand back dialog %s: it is %s, not with a human", id, d.Status)
	}
	d.Status, d.HandoffUntil = engine.StatusActive, nil
	d.History = append(d.History, engine.HistoryEntry{Kind: engine.HistHandoff, Detail: map[string]any{"end": true, "by": "operator"}})
	return nil
}

func (w *World) sortedTimers() []*pendingTimer {
	ts := slices.Clone(w.timers)
	sort.SliceStable(ts, func(i, j int) bool {
		if !ts[i].due.Equal(ts[j].due) {
			return ts[i].due.Before(ts[j].due)
		}
		return ts[i].id < ts[j].id
	})
	return ts
}

func (w *World) removeTimer(id int) {
	w.timers = slices.DeleteFunc(w.timers, func(t *pendingTimer) bool { return t.id == id })
}

func (w *World) run(rep *Report, first event.Event) {
	queue := []event.Event{first}
	for len(queue) > 0 {
		ev := queue[0]
		queue = queue[1:]
		queue = append(queue, w.process(rep, ev)...)
	}
}

// process handles one event and returns the result events of its actions.
func (w *World) process(rep *Report, ev event.Event) []event.Event {
	if ev.ID == "" {
		w.nEvent++
		ev.ID = "ev" + strconv.Itoa(w.nEvent)
	}
	if ev.At.IsZero() {
		ev.At = w.now
	}
	ev.Data = normalize(ev.Data)
	p := &Processed{Event: ev}
	rep.Events = append(rep.Events, p)
	if ev.DedupeKey != "" {
		if w.seen[ev.DedupeKey] {
			p.Outcome = OutcomeDuplicate
			return nil
		}
		w.seen[ev.DedupeKey] = true
	}
	w.noteInbound(&ev)
	if d := w.route(&ev); d != nil {
		return w.step(p, d)
	}
	return w.start(p)
}

// noteInbound moves a contact's last inbound time forward (never past now).
func (w *World) noteInbound(ev *event.Event) {
	switch ev.Type {
	case event.TypeWABAMessage, event.TypeTelegramMessage, event.TypeTelegramCallback:
	default:
		return
	}
	if ev.Contact.ID == "" {
		return
	}
	ch := ev.Contact.Channel
	if ch == "" {
		ch = ev.Source
	}
	at := ev.At
	if at.After(w.now) {
		at = w.now
	}
	k := ch + ":" + ev.Contact.ID
	if at.After(w.lastIn[k]) {
		w.lastIn[k] = at
	}
}

func (w *World) route(ev *event.Event) *Dialog {
	if ev.Source == event.SourceTimer || ev.Source == event.SourceAction {
		id, _ := ev.Data["dialog_id"].(string)
		return w.byID[id]
	}
	for _, k := range ev.Keys {
		if d := w.keys[k]; d != nil && !d.Ended() {
			return d
		}
	}
	return nil
}

func (w *World) start(p *Processed) []event.Event {
	ev := &p.Event
	var f *engine.Flow
	if w.flows != nil && ev.Source != event.SourceTimer && ev.Source != event.SourceAction {
		var errs []error
		f, errs = w.m.StartFlow(w.flows, ev, w.now)
		for _, err := range errs {
			p.Notes = append(p.Notes, "start guard failed: "+err.Error())
		}
	}
	if f == nil {
		p.Outcome = OutcomeUnrouted
		return nil
	}
	w.nDialog++
	id := strconv.Itoa(w.nDialog)
	d := &Dialog{FlowDef: f, Dialog: engine.Dialog{ID: id, Flow: f.Name, FlowHash: f.Hash, Status: engine.StatusActive,
		Channel: ev.Contact.Channel, Contact: ev.Contact.ID, Phone: ev.Contact.Phone, StartedAt: w.now, Vars: map[string]any{}}}
	w.dialogs = append(w.dialogs, d)
	w.byID[id] = d
	p.Started = true
	return w.apply(p, d, d.Dialog, w.m.Start(f, id, ev, w.now))
}

func (w *World) step(p *Processed, d *Dialog) []event.Event {
	prev := d.Dialog
	res := w.m.Step(d.FlowDef, d.Dialog, &p.Event, w.now)
	return w.apply(p, d, prev, res)
}

// apply commits a step's result, as the processor does in one transaction, and
// performs its actions.
func (w *World) apply(p *Processed, d *Dialog, prev engine.Dialog, res engine.Result) []event.Event {
	p.Dialog, p.Flow, p.From = d.ID, d.Flow, prev.State
	p.History = res.History
	d.History = append(d.History, res.History...)
	for _, h := range res.History {
		if h.Kind == engine.HistLog {
			p.Logs = append(p.Logs, fmt.Sprint(h.Detail["message"]))
		}
	}
	if res.Err != nil {
		p.Err, p.Outcome = res.Err, OutcomeFailed
		if p.Started {
			d.Status = engine.StatusFailed // a dialog that fails on its first step does not live on
		}
		p.To, p.Status = d.State, d.Status
		return nil
	}
	p.Outcome = outcomeOf(prev, &p.Event, res)
	if w.cov != nil {
		w.cov.record(d.FlowDef, res)
	}
	d.Dialog = res.Dialog
	for _, k := range res.Binds {
		if other := w.keys[k]; other != nil && other != d && !other.Ended() {
			note := "key " + k + " is bound to another live dialog; not bound here"
			p.Notes = append(p.Notes, note)
			d.History = append(d.History, engine.HistoryEntry{Kind: engine.HistError, Detail: map[string]any{"error": note}})
			continue
		}
		w.keys[k] = d
	}
	seen := map[string]bool{}
	for _, s := range res.CancelStates {
		if !seen[s] {
			seen[s] = true
			w.timers = slices.DeleteFunc(w.timers, func(t *pendingTimer) bool { return t.dialog == d.ID && t.state == s })
		}
	}
	for _, t := range res.Timers {
		if t.State != d.State {
			continue // the step left that state again
		}
		w.nTimer++
		w.timers = append(w.timers, &pendingTimer{id: w.nTimer, dialog: d.ID, state: t.State, name: t.Name, due: t.Due})
	}
	if d.Ended() {
		for k, x := range w.keys {
			if x == d {
				delete(w.keys, k)
			}
		}
		w.timers = slices.DeleteFunc(w.timers, func(t *pendingTimer) bool { return t.dialog == d.ID })
	}
	p.To, p.Status = d.State, d.Status
	var out []event.Event
	for _, e := range res.Effects {
		a := w.newAction(d, e)
		p.Actions = append(p.Actions, a)
		mock := w.mocks.take(e.Kind)
		if mock != nil && mock.Pending {
			// Its result comes when World.Complete delivers it (an ended dialog's
			// pending results still arrive, as the outbox's do).
			a.Pending = true
			w.pending = append(w.pending, a)
			continue
		}
		out = append(out, w.answer(d, a, mock))
	}
	return out
}

// outcomeOf classifies a successful step, replaying the interpreter's dispatch.
func outcomeOf(prev engine.Dialog, ev *event.Event, res engine.Result) Outcome {
	if prev.State == "" {
		return OutcomeHandled // the event started the dialog (Start does not set Handled)
	}
	if held(prev, ev) {
		return OutcomeHeld
	}
	if !res.Handled {
		return OutcomeUnhandled
	}
	for _, h := range res.History {
		if h.Kind == engine.HistIgnored {
			return OutcomeIgnored
		}
	}
	return OutcomeHandled
}

// held reports whether the interpreter keeps ev in the history without running a
// handler because the dialog is with a human: results of the bot's own actions
// and timers go through a handoff (engine.Machine.Step), everything else but the
// handoff's `until` events is held.
func held(d engine.Dialog, ev *event.Event) bool {
	return d.State != "" && !d.Ended() && d.Status == engine.StatusHandoff &&
		ev.Source != event.SourceAction && ev.Source != event.SourceTimer &&
		!slices.Contains(d.HandoffUntil, ev.Type)
}

// perform runs one outbound action against the mock table and returns it with its
// result event. A pending mock is answered like no mock.
func (w *World) perform(d *Dialog, e engine.Effect) (*Action, event.Event) {
	a := w.newAction(d, e)
	mock := w.mocks.take(e.Kind)
	if mock != nil && mock.Pending {
		mock = nil
	}
	return a, w.answer(d, a, mock)
}

func (w *World) newAction(d *Dialog, e engine.Effect) *Action {
	w.nAction++
	return &Action{ID: strconv.Itoa(w.nAction), Dialog: d.ID, Kind: e.Kind, Params: normalize(e.Params), State: e.State, Pos: e.Pos}
}

// answer gives action a its result (the default, with mock's fields or failure
// when mock is not nil) and returns the result event.
func (w *World) answer(d *Dialog, a *Action, mock *Mock) event.Event {
	var result map[string]any
	var fail *Failure
	if mock != nil && mock.Fail != nil && a.Kind != "send" {
		fail = mock.Fail // a failed call creates nothing: no issue number is used up
	} else {
		// A send is built and checked against the window even when mocked.
		result, fail = w.defaultResult(d, a)
		switch {
		case fail != nil || mock == nil:
		case mock.Fail != nil:
			fail = mock.Fail
		default:
			for k, v := range mock.Result {
				result[k] = v
			}
		}
	}
	data := map[string]any{}
	typ := event.TypeActionDone
	if fail != nil {
		a.Failure = fail
		typ = event.TypeActionFailed
		data["error"] = map[string]any{"code": fail.Code, "message": fail.Message, "status": fail.Status,
			"api_code": apiCode(fail), "connector": connectors.ConnectorOf(a.Kind, d.Channel), "attempts": 1, "dead": false}
	} else {
		a.Result = normalize(result)
		for k, v := range a.Result {
			data[k] = v
		}
	}
	data["action"], data["action_id"], data["dialog_id"] = a.Kind, a.ID, d.ID
	suffix := strings.TrimPrefix(typ, "action.")
	return event.Event{Source: event.SourceAction, Type: typ, At: w.now, DedupeKey: "action:" + a.ID + ":" + suffix, Data: data}
}

func apiCode(f *Failure) int {
	if f.Code == CodeWindowClosed {
		return 131047
	}
	return 0
}

// Failure codes the world produces itself (connectors' codes).
const (
	CodeWindowClosed = "window_closed"
	CodeUnsupported  = "unsupported"
)

// defaultResult is what a healthy connector answers; for send it also applies the
// WhatsApp window and builds the message.
func (w *World) defaultResult(d *Dialog, a *Action) (map[string]any, *Failure) {
	switch a.Kind {
	case "send":
		return w.send(d, a)
	case "okdesk.create_issue":
		w.nIssue++
		return map[string]any{"id": strconv.Itoa(1000 + w.nIssue), "contact_id": "1"}, nil
	case "okdesk.find_or_create_contact":
		return map[string]any{"contact_id": "1"}, nil
	}
	return map[string]any{}, nil
}

func (w *World) send(d *Dialog, a *Action) (map[string]any, *Failure) {
	msg := buildMessage(d.Channel, d.Contact, a.Params)
	a.Message = msg
	switch d.Channel {
	case "waba":
		if a.Params["template"] == nil && !w.windowOpen(d) {
			fb := templateOf(a.Params["fallback"])
			if fb == nil {
				last := w.lastIn["waba:"+d.Contact]
				why := "no inbound message from the contact is known"
				if !last.IsZero() {
					why = "the last inbound message was at " + last.UTC().Format(time.RFC3339)
				}
				return nil, &Failure{Code: CodeWindowClosed, Message: "24-hour customer service window is closed (" + why + "): send a template or give a fallback"}
			}
			msg.Template, msg.Via = fb, "fallback_template"
		}
		w.nSend++
		return map[string]any{"message_id": "wamid.sim." + strconv.Itoa(w.nSend), "via": msg.Via}, nil
	case "telegram":
		w.nSend++
		return map[string]any{"message_id": strconv.Itoa(w.nSend), "chat_id": d.Contact, "via": msg.Via}, nil
	}
	return nil, &Failure{Code: CodeUnsupported, Message: "the dialog has no customer channel to send on"}
}

func (w *World) windowOpen(d *Dialog) bool {
	last := w.lastIn["waba:"+d.Contact]
	return !last.IsZero() && w.now.Sub(last) < Window
}

func buildMessage(channel, to string, p map[string]any) *Message {
	m := &Message{Channel: channel, To: to, Text: str(p["text"]), Header: str(p["header"]), Footer: str(p["footer"]), Via: "text"}
	for _, b := range list(p["buttons"]) {
		bm, _ := b.(map[string]any)
		m.Buttons = append(m.Buttons, Choice{ID: str(bm["id"]), Title: str(bm["title"])})
	}
	if len(m.Buttons) > 0 {
		m.Via = "buttons"
	}
	if l, ok := p["list"].(map[string]any); ok {
		m.Via, m.ListButton = "list", str(l["button"])
		for _, r := range list(l["rows"]) {
			rm, _ := r.(map[string]any)
			m.Rows = append(m.Rows, Choice{ID: str(rm["id"]), Title: str(rm["title"]), Description: str(rm["description"])})
		}
	}
	if t := templateOf(p["template"]); t != nil {
		m.Template, m.Via = t, "template"
	}
	return m
}

func templateOf(v any) *Template {
	t, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := &Template{Name: str(t["name"]), Language: str(t["language"])}
	for _, x := range list(t["params"]) {
		out.Params = append(out.Params, str(x))
	}
	return out
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return engine.Stringify(v)
}

// normalize gives data the shape it has after a JSON round trip through the store
// (numbers as float64, maps with string keys), as the real pipeline delivers it.
func normalize(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return m
	}
	return out
}
