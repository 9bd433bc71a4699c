package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// MaxSteps bounds the eventless transitions (`always`) one event may cause.
const MaxSteps = 64

// Effect is an outbound action the step asks for, with evaluated parameters.
type Effect struct {
	Kind   string
	Params map[string]any
	State  string // the state whose enter/branch produced it
	Pos    Pos
}

// TimerSet asks for a timer to be scheduled.
type TimerSet struct {
	State string
	Name  string
	Due   time.Time
}

// HistoryEntry is one line of a dialog's history as a step writes it.
type HistoryEntry struct {
	Kind   dialog.HistoryKind `json:"kind"`
	From   string             `json:"from,omitempty"`
	To     string             `json:"to,omitempty"`
	Detail map[string]any     `json:"detail,omitempty"`
}

// Outcome says what a step did with its event, so that no caller has to work it
// out again from the history.
type Outcome string

// Outcomes of a step.
const (
	// Started: the event started the dialog, which entered its initial state.
	Started Outcome = "started"
	// Transitioned: a branch (or a timer) ran and the dialog entered another state.
	Transitioned Outcome = "transitioned"
	// Stayed: a branch ran and the dialog stayed in its state (handled in place).
	Stayed Outcome = "stayed"
	// Ignored: the state ignores the event on purpose (`ignore`, an action.done no
	// handler waits for, a timer of a state the dialog has left).
	Ignored Outcome = "ignored"
	// Unhandled: no branch ran. Result.Guards lists the guards the state's handler
	// tried when it has one; without a handler it is empty.
	Unhandled Outcome = "unhandled"
	// Held: the dialog is with a human; the event is kept in its history only.
	Held Outcome = "held"
	// Failed: a guard, `set` or template failed; the dialog is unchanged (a dialog
	// that fails on its very first step has failed).
	Failed Outcome = "failed"
	// Unrouted: no dialog holds the event's keys and no flow starts on it. The
	// router decides this, never a step.
	Unrouted Outcome = "unrouted"
)

// Ran reports whether a branch (or the start) ran for the event.
func (o Outcome) Ran() bool { return o == Started || o == Transitioned || o == Stayed }

// Guard is one guard a step tried, with its result.
type Guard struct {
	Branch int    `json:"branch"` // 1-based, in the handler
	Line   int    `json:"line"`
	Col    int    `json:"col"`
	When   string `json:"when,omitempty"` // "" for a branch without a guard
	Result bool   `json:"result"`
}

// Result is everything one step produced. Apply it in one transaction.
type Result struct {
	Outcome      Outcome
	Dialog       dialog.Dialog // the new dialog (unchanged on error, but for a first step)
	Effects      []Effect
	Binds        []string
	Timers       []TimerSet
	CancelStates []string // states whose pending timers must be cancelled
	History      []HistoryEntry
	Guards       []Guard // the guards tried, in order
	Err          error   // with Failed: what went wrong
}

// Machine runs steps. It owns a vm.VM, so it must not be shared across goroutines.
type Machine struct {
	vm  vm.VM
	env map[string]any
}

// NewMachine returns a Machine.
func NewMachine() *Machine { return &Machine{} }

// WithEnv sets the FLOW_* variables expressions see as env (see FlowEnv) and
// returns m.
func (m *Machine) WithEnv(env map[string]any) *Machine {
	m.env = env
	return m
}

// Match reports whether ev may start a dialog of flow f (type and guard).
func (m *Machine) Match(f *Flow, ev *event.Event, now time.Time) (bool, error) {
	ok := false
	for _, t := range f.StartOn {
		if t == ev.Type {
			ok = true
			break
		}
	}
	if !ok {
		return false, nil
	}
	if f.startWhen == nil {
		return true, nil
	}
	env := &Env{Event: *ev, Vars: f.Vars, Now: now, Dialog: DialogEnv{Flow: f.Name, BusinessNumber: event.BusinessNumber(ev)},
		Env: m.env}
	out, err := m.vm.Run(f.startWhen, env)
	if err != nil {
		return false, fmt.Errorf("flow %s: start guard: %w", f.Name, err)
	}
	b, _ := out.(bool)
	return b, nil
}

// StartFlow returns the flow of fs that ev starts, or nil. Flows are tried by
// priority, then file name; a start guard that fails is skipped and reported.
func (m *Machine) StartFlow(fs *FlowSet, ev *event.Event, now time.Time) (*Flow, []error) {
	var errs []error
	for _, f := range fs.ordered {
		ok, err := m.Match(f, ev, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return f, errs
		}
	}
	return nil, errs
}

// Start creates the dialog id of flow f for the event ev that started it and
// enters the initial state. The starting event is visible to enter actions but is
// not dispatched to the initial state's handlers. A dialog whose start fails does
// not live on: the result's dialog has failed in the initial state.
func (m *Machine) Start(f *Flow, id int64, ev *event.Event, now time.Time) Result {
	d := dialog.Dialog{ID: id, Flow: f.Name, FlowHash: f.Hash, Status: dialog.Active, Vars: copyVars(f.Vars),
		Channel: ev.Contact.Channel, ContactID: ev.Contact.ID, Phone: ev.Contact.Phone, BusinessNumber: event.BusinessNumber(ev),
		CreatedAt: now}
	for _, k := range ev.Keys {
		d.Keys = event.AddKey(d.Keys, k)
	}
	failed := d.Clone()
	failed.State, failed.Status = f.Initial, dialog.Failed
	r := &run{m: m, f: f, d: d, ev: ev, now: now}
	r.res.Binds = append(r.res.Binds, d.Keys...)
	r.hist(dialog.HistEvent, "", "", map[string]any{"type": ev.Type, "event_id": ev.ID, "start": true})
	r.enter(f.Initial, "")
	r.res.Outcome = Started
	return r.finish(failed)
}

// Step applies ev to dialog d of flow f at time now. It is pure and deterministic:
// the same inputs give the same result.
func (m *Machine) Step(f *Flow, d dialog.Dialog, ev *event.Event, now time.Time) Result {
	orig := d
	r := &run{m: m, f: f, d: d.Clone(), ev: ev, now: now}
	r.hist(dialog.HistEvent, "", "", map[string]any{"type": ev.Type, "event_id": ev.ID, "state": d.State})
	st := f.States[d.State]
	if c, ok := event.ControlOf(ev); ok {
		r.control(c)
		return r.finish(orig)
	}
	switch {
	case d.Ended():
		r.res.Outcome = Unhandled
		r.hist(dialog.HistUnhandled, "", "", map[string]any{"reason": "dialog has ended: " + string(d.Status)})
		return r.finish(orig)
	case st == nil:
		r.fail(fmt.Errorf("state %q does not exist in flow %s version %s", d.State, f.Name, short(f.Hash)))
		return r.finish(orig)
	case d.Status == dialog.Handoff && ev.Source != event.SourceAction && ev.Source != event.SourceTimer:
		// The bot is silent while a human has the dialog. Results of the bot's own
		// actions still arrive (an issue created before the handoff gets bound), and
		// so do the state's own timers (a handoff can time out).
		if !slices.Contains(d.HandoffUntil, ev.Type) {
			r.res.Outcome = Held
			r.hist(dialog.HistHandoff, "", "", map[string]any{"reason": "dialog is with a human; event kept in history"})
			return r.finish(orig)
		}
		r.endHandoff("by", ev.Type)
	}
	if ev.Type == event.TypeTimer {
		r.timer(st)
		return r.finish(orig)
	}
	branches, ok := st.On[ev.Type]
	if !ok {
		// Every outbound action answers with action.done; a state that does not
		// wait for one ignores it. An unhandled action.failed stays visible.
		if st.Ignore[ev.Type] || ev.Type == event.TypeActionDone {
			r.res.Outcome = Ignored
			r.hist(dialog.HistIgnored, "", "", map[string]any{"type": ev.Type})
		} else {
			r.res.Outcome = Unhandled
			r.hist(dialog.HistUnhandled, "", "", map[string]any{"type": ev.Type, "state": d.State})
		}
		return r.finish(orig)
	}
	r.branch(branches, "on "+ev.Type)
	return r.finish(orig)
}

// run is the state of one step in progress.
type run struct {
	m       *Machine
	f       *Flow
	d       dialog.Dialog
	ev      *event.Event
	now     time.Time
	res     Result
	steps   int
	entered bool // the step entered a state
}

func (r *run) hist(kind dialog.HistoryKind, from, to string, detail map[string]any) {
	r.res.History = append(r.res.History, HistoryEntry{Kind: kind, From: from, To: to, Detail: detail})
}

func (r *run) fail(err error) {
	if r.res.Err == nil {
		r.res.Err = err
		r.hist(dialog.HistError, "", "", map[string]any{"error": err.Error(), "state": r.d.State})
	}
}

// endHandoff gives the dialog back to the bot, saying by what (an event type, an
// operator) in the history.
func (r *run) endHandoff(byKey, by string) {
	r.d.Status, r.d.HandoffUntil = dialog.Active, nil
	r.hist(dialog.HistHandoff, "", "", map[string]any{"end": true, byKey: by})
}

// finish returns the result; on error the dialog and its effects are rolled back
// to orig, keeping only the history (and the guards) that explain what went wrong.
func (r *run) finish(orig dialog.Dialog) Result {
	if r.res.Err != nil {
		r.res = Result{Outcome: Failed, Dialog: orig, History: r.res.History, Guards: r.res.Guards, Err: r.res.Err}
		return r.res
	}
	r.res.Dialog = r.d
	return r.res
}

func (r *run) env() *Env {
	return &Env{Event: *r.ev, Vars: r.d.Vars, Now: r.now, Env: r.m.env, Dialog: DialogEnv{
		ID: strconv.FormatInt(r.d.ID, 10), Flow: r.d.Flow, State: r.d.State, Status: string(r.d.Status), Channel: r.d.Channel,
		Contact: r.d.ContactID, Phone: r.d.Phone, BusinessNumber: r.d.BusinessNumber, Keys: r.d.Keys, StartedAt: r.d.CreatedAt,
		EnteredAt: r.d.EnteredAt}}
}

// branch runs the first of bs whose guard holds and sets the outcome: moved on,
// stayed, or unhandled when no guard held.
func (r *run) branch(bs []*Branch, where string) {
	b := r.choose(bs, where)
	switch {
	case r.res.Err != nil:
	case b == nil:
		r.res.Outcome = Unhandled
		r.hist(dialog.HistUnhandled, "", "", map[string]any{"reason": "no branch matched", "state": r.d.State})
	default:
		r.take(b)
		r.res.Outcome = Stayed
		if r.entered {
			r.res.Outcome = Transitioned
		}
	}
}

// choose returns the first branch whose guard holds, recording each guard it
// tried and the branch it took (an unguarded one too), with the branch's place.
func (r *run) choose(bs []*Branch, where string) *Branch {
	for i, b := range bs {
		g := Guard{Branch: i + 1, Line: b.Pos.Line, Col: b.Pos.Col, When: b.WhenSrc, Result: true}
		if b.when != nil {
			out, err := r.m.vm.Run(b.when, r.env())
			if err != nil {
				r.fail(fmt.Errorf("state %s, %s, branch %d (line %d): guard %q: %w", r.d.State, where, i+1, b.Pos.Line, b.WhenSrc, err))
				return nil
			}
			g.Result, _ = out.(bool)
		}
		r.res.Guards = append(r.res.Guards, g)
		r.hist(dialog.HistGuard, "", "", map[string]any{"branch": g.Branch, "line": g.Line, "col": g.Col, "when": g.When, "result": g.Result})
		if g.Result {
			return b
		}
	}
	return nil
}

// take runs a branch: set, actions, goto.
func (r *run) take(b *Branch) {
	for _, a := range b.Set {
		v, err := r.m.vm.Run(a.prog, r.env())
		if err != nil {
			r.fail(fmt.Errorf("state %s, line %d: set %s = %s: %w", r.d.State, b.Pos.Line, a.Var, a.Src, err))
			return
		}
		v = normalizeValue(v)
		r.d.Vars[a.Var] = v
		r.hist(dialog.HistSet, "", "", map[string]any{"var": a.Var, "value": v})
	}
	r.actions(b.Actions)
	if r.res.Err != nil || b.Goto == "" {
		return
	}
	r.enter(b.Goto, r.d.State)
}

// enter leaves the current state (cancelling its timers) and enters name.
func (r *run) enter(name, from string) {
	r.entered = true
	for {
		r.steps++
		if r.steps > MaxSteps {
			r.fail(fmt.Errorf("more than %d transitions without waiting for an event (last: %s → %s)", MaxSteps, from, name))
			return
		}
		if from != "" {
			r.res.CancelStates = append(r.res.CancelStates, from)
		}
		st := r.f.States[name]
		r.hist(dialog.HistTransition, from, name, nil)
		r.d.State, r.d.EnteredAt = name, r.now
		for _, t := range st.Timers {
			r.res.Timers = append(r.res.Timers, TimerSet{State: name, Name: t.Name, Due: r.now.Add(t.After)})
		}
		r.actions(st.Enter)
		if r.res.Err != nil {
			return
		}
		if st.Final {
			r.d.Status = st.FinalStatus
			r.res.CancelStates = append(r.res.CancelStates, name)
			r.hist(dialog.HistEnd, "", "", map[string]any{"status": string(st.FinalStatus)})
			return
		}
		b := r.choose(st.Always, "always")
		if b == nil || r.res.Err != nil {
			return
		}
		// An always-branch: set and actions, then continue to its goto.
		target := b.Goto
		b2 := *b
		b2.Goto = ""
		r.take(&b2)
		if r.res.Err != nil || target == "" {
			return
		}
		from, name = name, target
	}
}

// timer runs the branch of the timer named in the event, if it still applies.
func (r *run) timer(st *State) {
	t, _ := event.TimerOf(r.ev)
	if t.State != st.Name {
		r.res.Outcome = Ignored
		r.hist(dialog.HistIgnored, "", "", map[string]any{"timer": t.Name, "reason": "stale: dialog left state " + t.State})
		return
	}
	for _, tm := range st.Timers {
		if tm.Name != t.Name {
			continue
		}
		r.hist(dialog.HistTimer, "", "", map[string]any{"timer": t.Name, "after": tm.Written(), "line": tm.Pos.Line, "col": tm.Pos.Col})
		r.branch([]*Branch{&tm.Branch}, "after "+tm.Written())
		return
	}
	r.res.Outcome = Unhandled
	r.hist(dialog.HistUnhandled, "", "", map[string]any{"timer": t.Name, "reason": "no such timer in this flow version"})
}

// actions evaluates and applies actions: local ones here, the rest become effects.
func (r *run) actions(as []*Action) {
	for _, a := range as {
		params, err := r.params(a)
		if err != nil {
			r.fail(fmt.Errorf("state %s, %s at line %d: %w", r.d.State, a.Kind, a.Pos.Line, err))
			return
		}
		switch a.Kind {
		case "bind":
			key, _ := params["key"].(string)
			if key == "" {
				r.fail(fmt.Errorf("state %s, bind at line %d: the key is empty", r.d.State, a.Pos.Line))
				return
			}
			r.d.Keys = event.AddKey(r.d.Keys, key)
			r.res.Binds = append(r.res.Binds, key)
			r.hist(dialog.HistBind, "", "", map[string]any{"key": key})
		case "log":
			r.hist(dialog.HistLog, "", "", params)
		case "handoff":
			r.d.Status = dialog.Handoff
			r.d.HandoffUntil = toStrings(params["until"])
			r.hist(dialog.HistHandoff, "", "", params)
		default:
			for _, ps := range splitFiles(a.Kind, params) {
				r.res.Effects = append(r.res.Effects, Effect{Kind: a.Kind, Params: ps, State: r.d.State, Pos: a.Pos})
				r.hist(dialog.HistAction, "", "", map[string]any{"kind": a.Kind, "line": a.Pos.Line})
			}
		}
	}
}

// splitFiles makes a send whose file is a list of several files (e.g.
// ${event.data.files}) one message per file, in order, the text the first one's
// caption; a message carries one file. Any other action is itself.
func splitFiles(kind string, params map[string]any) []map[string]any {
	list, ok := params["file"].([]any)
	if kind != "send" || !ok {
		return []map[string]any{params}
	}
	var files []any
	for _, f := range list {
		if f != nil {
			files = append(files, f)
		}
	}
	if len(files) < 2 {
		return []map[string]any{params}
	}
	out := make([]map[string]any, len(files))
	for i, f := range files {
		ps := make(map[string]any, len(params))
		for k, v := range params {
			if i > 0 && k == "text" {
				continue
			}
			ps[k] = v
		}
		ps["file"] = f
		out[i] = ps
	}
	return out
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (r *run) params(a *Action) (map[string]any, error) {
	out := make(map[string]any, len(a.Params))
	env := r.env()
	for _, p := range a.Params {
		v, err := r.value(p.Value, env)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		out[p.Name] = v
	}
	return out, nil
}

func (r *run) value(v *Value, env *Env) (any, error) {
	switch v.kind {
	case vLit:
		return v.lit, nil
	case vTmpl:
		return r.render(v.tmpl, env)
	case vList:
		out := make([]any, len(v.list))
		for i, x := range v.list {
			y, err := r.value(x, env)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case vMap:
		out := make(map[string]any, len(v.m))
		for _, p := range v.m {
			y, err := r.value(p.Value, env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
			out[p.Name] = y
		}
		return out, nil
	}
	return nil, nil
}

// render evaluates a template. A template that is one ${expr} keeps the value's type.
func (r *run) render(t *Template, env *Env) (any, error) {
	if t.single {
		v, err := r.m.vm.Run(t.parts[0].prog, env)
		if err != nil {
			return nil, fmt.Errorf("${%s}: %w", t.parts[0].src, err)
		}
		return normalizeValue(v), nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := r.m.vm.Run(p.prog, env)
		if err != nil {
			return nil, fmt.Errorf("${%s}: %w", p.src, err)
		}
		b.WriteString(Stringify(v))
	}
	return b.String(), nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func copyVars(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = x
	}
	return out
}

// normalizeValue turns values from YAML or expr into the JSON data model (numbers as
// float64, maps with string keys) so a value survives a store round trip unchanged.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeValue(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalizeValue(e)
		}
		return out
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	}
	return v
}
