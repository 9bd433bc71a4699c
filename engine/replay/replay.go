package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/sim"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Results of a replayed dialog.
const (
	Same     = "same"
	Diverged = "diverged"
	Stranded = "stranded"
)

// Verdict is what replaying one recorded dialog against a candidate flow set gave.
type Verdict struct {
	DialogID int64  `json:"dialog"`
	Flow     string `json:"flow"`
	Result   string `json:"result"` // same, diverged or stranded
	Reason   string `json:"reason,omitempty"`
	// Step is the 1-based step (an event the dialog processed) where it diverged;
	// Recorded and Candidate say what each did there.
	Step      int   `json:"step,omitempty"`
	Recorded  *Step `json:"recorded,omitempty"`
	Candidate *Step `json:"candidate,omitempty"`
}

// Step is what a dialog did with one event: the states it moved through, the
// variables it wrote, the actions it asked for (with their parameters) and the
// rest of what its history records (keys bound, logs, handoffs, errors, the end).
type Step struct {
	Event   string   `json:"event"`         // the event's type and, for a message, its text
	Seq     int64    `json:"seq,omitempty"` // the event's id where it was recorded
	Moves   []string `json:"moves,omitempty"`
	Vars    []string `json:"vars,omitempty"`
	Actions []string `json:"actions,omitempty"`
	Other   []string `json:"other,omitempty"`
	// Where is the flow file and line of the branch the step took ("" when none).
	Where string `json:"where,omitempty"`
}

// same reports whether two steps did the same (where in the file may differ).
func (s Step) same(o Step) bool {
	return s.Event == o.Event && slices.Equal(s.Moves, o.Moves) && slices.Equal(s.Vars, o.Vars) &&
		slices.Equal(s.Actions, o.Actions) && slices.Equal(s.Other, o.Other)
}

// String writes a step on one line.
func (s Step) String() string {
	parts := []string{s.Event}
	if len(s.Moves) > 0 {
		parts = append(parts, strings.Join(s.Moves, ", "))
	}
	if len(s.Vars) > 0 {
		parts = append(parts, "set "+strings.Join(s.Vars, ", "))
	}
	parts = append(parts, s.Actions...)
	parts = append(parts, s.Other...)
	if s.Where != "" {
		parts = append(parts, "at "+s.Where)
	}
	return strings.Join(parts, "; ")
}

// Run replays one recorded dialog against the candidate flow set fs (env: the
// FLOW_* variables flows read). See the package documentation for the rules:
// recorded events are fed in order at their recorded times, a recorded timer event
// only moves the clock to when it fired (the candidate's own timers due by then
// fire there; others fire at their due times on the way), and each action of the
// candidate gets the recorded outcome of the action of its kind in the same place,
// delivered where the recording received it; actions the recording lacks get the
// test world's defaults.
func Run(ctx context.Context, rec Recording, fs *engine.FlowSet, env map[string]any) (Verdict, error) {
	v := Verdict{DialogID: rec.Dialog.ID, Flow: rec.Dialog.Flow, Result: Same}
	f := fs.Flow(rec.Dialog.Flow)
	if f == nil {
		v.Result, v.Reason = Stranded, fmt.Sprintf("the candidate flows have no flow %s", rec.Dialog.Flow)
		return v, nil
	}
	if !rec.Dialog.Status.Ended() {
		if _, ok := f.MigrateTarget(rec.Dialog.State); !ok {
			v.Result = Stranded
			v.Reason = fmt.Sprintf("the dialog waits in state %q, which the candidate %s does not have, and no migrate maps it", rec.Dialog.State, f.File)
			return v, nil
		}
	}
	if len(rec.Events) == 0 {
		v.Reason = "nothing was recorded"
		return v, nil
	}
	w, err := sim.NewWorld(fs, sim.Options{Start: rec.Events[0].ReceivedAt, Env: env})
	if err != nil {
		return v, err
	}
	defer w.Close()
	for _, kind := range sim.ActionKinds() {
		w.Mocks().Set(kind, sim.Mock{Pending: true}) // every result waits for its place
	}
	var id int64
	for _, e := range processingOrder(rec) {
		ev := e.Event
		switch {
		case ev.Type == event.TypeTimer:
			// The candidate's timers due by the time this one fired fire there.
			w.Jump(e.ReceivedAt)
		case ev.Source == event.SourceAction:
			_, kind, _ := event.ActionOf(&ev)
			if !slices.ContainsFunc(w.Pending(), func(a *sim.Action) bool { return a.Kind == kind }) {
				// A second result of one action: an operator retried it after it failed.
				if err := retryLast(w, id, kind); err != nil {
					return v, err
				}
			}
			if slices.ContainsFunc(w.Pending(), func(a *sim.Action) bool { return a.Kind == kind }) {
				if _, err := w.Complete(kind, answer(&ev)); err != nil {
					return v, err
				}
			}
		default:
			w.Advance(e.ReceivedAt.Sub(w.Now()))
			if c, ok := event.ControlOf(&ev); ok {
				c.DialogID = id
				ev = c.Event(w.Now())
			}
			if ev.Type == event.TypeWABAMessageFailed {
				// The world's sends have other message ids, so the recorded receipt
				// matches none of them: the failure it led to is replayed itself,
				// addressed to the world's dialog.
				ev.Data = maps.Clone(ev.Data)
				ev.Data[event.FieldDialogID] = strconv.FormatInt(id, 10)
			}
			rep := w.Inject(ev)
			if rep.Err != nil {
				return v, rep.Err
			}
			if id == 0 && len(rep.Events) > 0 {
				// An event may go to several dialogs (an alongside flow takes it):
				// the recorded flow's is the one replayed.
				id = rep.Events[0].Dialog
				for _, p := range rep.Events {
					if p.Flow == rec.Dialog.Flow && p.Dialog != 0 {
						id = p.Dialog
						break
					}
				}
			}
		}
	}
	// Results the recording never received: the defaults.
	for len(w.Pending()) > 0 {
		if _, err := w.Complete(w.Pending()[0].Kind, sim.Mock{}); err != nil {
			return v, err
		}
	}
	recorded := steps(rec.History, rec.Actions, rec.Dialog.File, seqTypes(rec.Events))
	var candidate []Step
	if d := w.Dialog(id); d != nil {
		if d.Flow != rec.Dialog.Flow {
			v.Result, v.Step = Diverged, 1
			v.Reason = fmt.Sprintf("the first event starts flow %s instead", d.Flow)
			return v, nil
		}
		items, _, err := w.Store().ListOutbox(ctx, store.OutboxFilter{DialogID: id}, store.Page{Limit: store.MaxLimit})
		if err != nil {
			return v, err
		}
		var acts []Action
		for _, it := range items {
			acts = append(acts, Action{ID: it.ID, Kind: it.Kind, Params: it.Params})
		}
		slices.SortFunc(acts, func(a, b Action) int { return int(a.ID - b.ID) })
		var lines []Line
		evTypes := map[int64]string{}
		for _, h := range w.History(id) {
			l := Line{At: h.At, Kind: h.Kind, From: h.FromState, To: h.ToState}
			if h.EventSeq != nil {
				l.EventSeq = *h.EventSeq
				if _, ok := evTypes[l.EventSeq]; !ok {
					if se, err := w.Store().GetEvent(ctx, l.EventSeq); err == nil {
						evTypes[l.EventSeq] = label(&se.Event)
					}
				}
			}
			if len(h.Detail) > 0 {
				_ = json.Unmarshal(h.Detail, &l.Detail)
			}
			lines = append(lines, l)
		}
		candidate = steps(lines, acts, f.File, evTypes)
	}
	for i := range max(len(recorded), len(candidate)) {
		var r, c *Step
		if i < len(recorded) {
			r = &recorded[i]
		}
		if i < len(candidate) {
			c = &candidate[i]
		}
		if r != nil && c != nil && r.same(*c) {
			continue
		}
		v.Result, v.Step, v.Recorded, v.Candidate = Diverged, i+1, r, c
		switch {
		case r == nil:
			v.Reason = "the candidate processed more events"
		case c == nil:
			v.Reason = "the candidate processed fewer events"
		}
		return v, nil
	}
	return v, nil
}

// processingOrder lists the recorded events in the order the dialog processed
// them, which its history tells: an event re-driven by an operator was processed
// after events that arrived later. Events the history does not name keep their
// place by id.
func processingOrder(rec Recording) []Event {
	first := map[int64]int{}
	for i, l := range rec.History {
		if _, ok := first[l.EventSeq]; !ok && l.EventSeq != 0 {
			first[l.EventSeq] = i
		}
	}
	out := slices.Clone(rec.Events)
	slices.SortFunc(out, func(a, b Event) int { return int(a.Seq - b.Seq) })
	key := make(map[int64]float64, len(out))
	last := -1.0
	for _, e := range out {
		if i, ok := first[e.Seq]; ok {
			last = float64(i)
		} else {
			last += 0.5 // right after the event before it
		}
		key[e.Seq] = last
	}
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(key[a.Seq], key[b.Seq]) })
	return out
}

// retryLast retries the candidate's last failed or dead action of kind in dialog
// id, if it has one.
func retryLast(w *sim.World, id int64, kind string) error {
	if id == 0 {
		return nil
	}
	if _, err := w.Retry(id, kind); err != nil && !errors.Is(err, sim.ErrNothingToRetry) {
		return err
	}
	return nil
}

// answer is the recorded outcome of an action, from its result event.
func answer(ev *event.Event) sim.Mock {
	if ev.Type == event.TypeActionFailed {
		e, _ := ev.Data[event.FieldError].(map[string]any)
		status, _ := e["status"].(float64)
		code, _ := e["code"].(string)
		msg, _ := e["message"].(string)
		return sim.Mock{Fail: &sim.Failure{Code: code, Message: msg, Status: int(status)}}
	}
	res := map[string]any{}
	for k, v := range ev.Data {
		switch k {
		case event.FieldAction, event.FieldActionID, event.FieldDialogID, "dry_run":
		default:
			res[k] = v
		}
	}
	return sim.Mock{Result: res}
}

// seqTypes labels the recorded events by their ids.
func seqTypes(evs []Event) map[int64]string {
	out := make(map[int64]string, len(evs))
	for i := range evs {
		out[evs[i].Seq] = label(&evs[i].Event)
	}
	return out
}

// label names an event for a step: its type and, for a message, its text.
func label(ev *event.Event) string {
	switch {
	case ev.Type == event.TypeTimer:
		t, _ := event.TimerOf(ev)
		return "timer " + t.State + "/" + t.Name
	case ev.Source == event.SourceAction:
		_, kind, _ := event.ActionOf(ev)
		return ev.Type + " " + kind
	case ev.Text != "":
		return fmt.Sprintf("%s %q", ev.Type, ev.Text)
	}
	return ev.Type
}

// steps reads a dialog's history as the steps of the events it processed, in
// order; the history's action lines take the dialog's actions in order.
func steps(lines []Line, actions []Action, file string, labels map[int64]string) []Step {
	var out []Step
	index := map[int64]int{}
	next := 0
	for _, l := range lines {
		if l.EventSeq == 0 {
			continue // an operator's retry or redrive note
		}
		i, ok := index[l.EventSeq]
		if !ok {
			i = len(out)
			index[l.EventSeq] = i
			out = append(out, Step{Event: labels[l.EventSeq], Seq: l.EventSeq})
		}
		s := &out[i]
		d := l.Detail
		switch l.Kind {
		case dialog.HistTransition:
			s.Moves = append(s.Moves, orDash(l.From)+" → "+l.To)
		case dialog.HistSet:
			b, _ := json.Marshal(d["value"])
			s.Vars = append(s.Vars, fmt.Sprintf("%v=%s", d["var"], b))
		case dialog.HistAction:
			a := fmt.Sprint(d["kind"])
			if next < len(actions) {
				a = actions[next].Kind + " " + canon(actions[next].Params)
				next++
			}
			s.Actions = append(s.Actions, a)
		case dialog.HistGuard:
			if ok, _ := d["result"].(bool); ok && s.Where == "" {
				s.Where = fmt.Sprintf("%s:%v", file, d["line"])
			}
		case dialog.HistBind:
			s.Other = append(s.Other, fmt.Sprintf("bind %v", d["key"]))
		case dialog.HistLog:
			s.Other = append(s.Other, fmt.Sprintf("log %q", fmt.Sprint(d["message"])))
		case dialog.HistEnd:
			s.Other = append(s.Other, fmt.Sprintf("end %v", d["status"]))
		case dialog.HistEvent, dialog.HistTimer:
		default:
			s.Other = append(s.Other, string(l.Kind))
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "(start)"
	}
	return s
}

// canon writes parameters with sorted keys, so equal ones read equal.
func canon(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
