package sim

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

var anna = WhatsAppContact{Phone: "+79161234567", Name: "Анна"}

// demoFlows are the scenario package's demo flows: buttons, lists, Telegram, a
// handoff, a runtime error.
func demoFlows(t *testing.T) *engine.FlowSet {
	t.Helper()
	fs, diags := DefaultLoader().Load("../scenario/testdata/flows")
	if fs == nil {
		t.Fatalf("load demo flows: %v", diags)
	}
	return fs
}

// newWorld is a world of the demo flows, closed with the test.
func newWorld(t *testing.T) *World {
	t.Helper()
	w, err := NewWorld(demoFlows(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// built is the notification a builder made; it panics when it could not (a bug in the test).
func built(d Delivery, err error) Delivery {
	if err != nil {
		panic(err)
	}
	return d
}

func TestActionResultEvents(t *testing.T) {
	w := newWorld(t)
	w.Deliver(built(w.WhatsAppText(anna, "hi")))
	w.Mocks().Once("okdesk.create_issue", Mock{Fail: &Failure{Code: "bad_request", Message: "no", Status: 422}})
	rep := w.Deliver(built(w.WhatsAppText(anna, "issue")))
	if len(rep.Events) != 2 {
		t.Fatalf("events: %d", len(rep.Events))
	}
	got := rep.Events[1].Event
	e, _ := got.Data["error"].(map[string]any)
	if got.Type != event.TypeActionFailed || got.Source != event.SourceAction || got.Data["action"] != "okdesk.create_issue" ||
		got.Data["action_id"] != "2" || got.Data["dialog_id"] != "1" || e["code"] != "bad_request" || e["status"] != 422.0 || e["message"] != "no" {
		t.Errorf("action.failed = %+v", got)
	}
	rep = w.Deliver(built(w.WhatsAppText(anna, "issue")))
	done := rep.Events[1].Event
	if done.Type != event.TypeActionDone || done.Data["id"] != "1001" || done.Data["contact_id"] != "1" || done.Data["action_id"] != "3" {
		t.Errorf("action.done = %+v", done)
	}
	if d := w.DialogByKey("okdesk:issue:1001"); d == nil || d.ID != 1 {
		t.Errorf("issue key not bound: %v", d)
	}
}

// TestWindow: a free-form message goes out inside WhatsApp's 24-hour window only
// (the real client decides); a template goes out always.
func TestWindow(t *testing.T) {
	tests := []struct {
		name     string
		wait     time.Duration
		control  event.Control
		via      string
		failCode string
	}{
		{"inside", 23*time.Hour + 59*time.Minute, event.Control{Text: "x"}, "text", ""},
		// The control is refused before it is stored, as the admin API refuses it.
		{"exactly 24h is closed", 24 * time.Hour, event.Control{Text: "x"}, "", "refused"},
		{"a template ignores the window", 25 * time.Hour, event.Control{Template: map[string]any{"name": "t", "language": "ru"}}, "template", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.Deliver(built(w.WhatsAppText(anna, "hi")))
			w.now = w.now.Add(tc.wait) // no timer fires
			c := tc.control
			c.Kind, c.DialogID, c.Operator = event.ControlMessage, 1, "anna"
			rep, err := w.Control(c)
			if tc.failCode == "refused" {
				var ce *engine.ErrControl
				if !errors.As(err, &ce) || !ce.Invalid || !strings.Contains(err.Error(), "24-hour") {
					t.Fatalf("outside the window: %v, want a refusal", err)
				}
				if rep != nil {
					t.Fatalf("a refused control was applied: %+v", rep)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			acts := rep.Actions()
			if len(acts) != 1 {
				t.Fatalf("actions: %+v", rep.Events)
			}
			a := acts[0]
			if tc.failCode != "" {
				if a.Failure == nil || a.Failure.Code != tc.failCode || rep.Events[1].Event.Type != event.TypeActionFailed {
					t.Fatalf("failure = %+v", a.Failure)
				}
				return
			}
			if a.Failure != nil || a.Message.Via != tc.via || a.Result["via"] != tc.via {
				t.Fatalf("via = %q (%+v), want %q", a.Message.Via, a.Failure, tc.via)
			}
		})
	}
}

func TestTimersFireInDueOrderAtTheirTime(t *testing.T) {
	w := newWorld(t)
	w.Deliver(built(w.WhatsAppText(anna, "hi")))
	w.Advance(30 * time.Minute)
	w.Deliver(built(w.WhatsAppText(WhatsAppContact{Phone: "+79160000001"}, "hi"))) // dialog 2, its timer 30m later
	if got := w.PendingTimers(1); len(got) != 1 {
		t.Fatalf("timers of dialog 1: %v", got)
	}
	rep := w.Advance(3 * time.Hour)
	var fired []string
	for _, p := range rep.Events {
		if p.Event.Type == event.TypeTimer {
			fired = append(fired, fmt.Sprintf("%d@%s", p.Dialog, p.Event.At.In(w.Now().Location()).Format("15:04")))
		}
	}
	if len(fired) != 2 || fired[0] != "1@11:00" || fired[1] != "2@11:30" {
		t.Errorf("fired = %v", fired)
	}
	if w.Now().Format("15:04") != "13:30" || w.Dialog(1).Status != dialog.Abandoned {
		t.Errorf("now %s, dialog 1 %s", w.Now(), w.Dialog(1).Status)
	}
	// An ended dialog released its keys: the contact starts a new dialog.
	rep = w.Deliver(built(w.WhatsAppText(anna, "again")))
	if !rep.Events[0].Started || rep.Events[0].Dialog != 3 {
		t.Errorf("after the end: %+v", rep.Events[0])
	}
}

func TestLeavingAStateCancelsItsTimers(t *testing.T) {
	w := newWorld(t)
	w.Deliver(built(w.WhatsAppText(anna, "hi")))
	w.Deliver(built(w.WhatsAppButton(anna, "a", "Альфа")))
	if got := w.PendingTimers(1); len(got) != 0 {
		t.Errorf("timers after leaving menu: %v", got)
	}
	if rep := w.Advance(2 * time.Hour); len(rep.Events) != 0 {
		t.Errorf("a cancelled timer fired: %+v", rep.Events[0])
	}
}

func TestDuplicatesAndUnrouted(t *testing.T) {
	w := newWorld(t)
	ev := built(w.WhatsAppText(anna, "hi"))
	w.Deliver(ev)
	if rep := w.Deliver(ev); rep.Events[0].Outcome != OutcomeDuplicate || len(rep.Events) != 1 {
		t.Errorf("duplicate: %+v", rep.Events[0])
	}
	if rep := w.Deliver(built(w.OkdeskStatus(OkdeskIssue{ID: "5"}, "completed", ""))); rep.Events[0].Outcome != OutcomeUnrouted {
		t.Errorf("unrouted: %+v", rep.Events[0])
	}
}

func TestKeyBoundElsewhereIsNotStolen(t *testing.T) {
	w := newWorld(t)
	w.Mocks().Set("okdesk.create_issue", Mock{Result: map[string]any{"id": "9"}})
	other := WhatsAppContact{Phone: "+79160000001"}
	w.Deliver(built(w.WhatsAppText(anna, "hi")))
	w.Deliver(built(w.WhatsAppText(other, "hi")))
	w.Deliver(built(w.WhatsAppText(anna, "issue")))
	rep := w.Deliver(built(w.WhatsAppText(other, "issue")))
	if d := w.DialogByKey("okdesk:issue:9"); d == nil || d.ID != 1 {
		t.Fatalf("okdesk:issue:9 bound to %v", d)
	}
	if notes := rep.Events[1].Notes; len(notes) != 1 {
		t.Errorf("notes = %v", notes)
	}
}

func TestEventShapes(t *testing.T) {
	w := newWorld(t)
	pay := built(w.OneCPayment(Payment{Status: "paid", OkdeskIssueID: "1542", Phone: "+7 916 123-45-67"}))
	if len(pay.Event.Keys) != 3 || pay.Event.Keys[1] != "okdesk:issue:1542" || pay.Event.Keys[2] != "phone:79161234567" || pay.Event.Data["okdesk_issue_id"] != "1542" {
		t.Errorf("payment = %+v", pay)
	}
	img := built(w.WhatsAppMedia(anna, "image", "cap", ""))
	if img.Event.Text != "cap" || img.Event.Data["kind"] != "image" || img.Event.Data["caption"] != "cap" || img.Event.Data["media_id"] == nil {
		t.Errorf("image = %+v", img)
	}
	c := built(w.OkdeskComment(OkdeskIssue{ID: "7"}, "t", false, "employee"))
	if c.Event.Type != "okdesk.new_comment" || c.Event.Data["comment_public"] != false || c.Event.Data["issue_id"] != "7" || c.Event.Text != "t" {
		t.Errorf("comment = %+v", c)
	}
	cb := built(w.TelegramCallback(TelegramChat{ChatID: "42"}, "yes"))
	if cb.Event.Type != event.TypeTelegramCallback || cb.Event.Keys[0] != "telegram:42" || cb.Event.Data["data"] != "yes" || cb.Event.Text != "yes" {
		t.Errorf("callback = %+v", cb)
	}
}

// TestHandoffLetsTimersAndResultsThrough: the interpreter runs action results and
// the state's timers while a human has the dialog; only other events are held.
func TestHandoffLetsTimersAndResultsThrough(t *testing.T) {
	w := newWorld(t)
	w.Deliver(built(w.WhatsAppText(anna, "hi")))
	w.Mocks().Once("okdesk.create_issue", Mock{Pending: true})
	w.Deliver(built(w.WhatsAppText(anna, "issue")))
	if rep := w.Deliver(built(w.WhatsAppText(anna, "help"))); w.Dialog(1).Status != dialog.Handoff || rep.Events[0].Outcome != OutcomeHandled {
		t.Fatalf("help: %s, %s", w.Dialog(1).Status, rep.Events[0].Outcome)
	}
	if rep := w.Deliver(built(w.WhatsAppText(anna, "again"))); rep.Events[0].Outcome != OutcomeHeld {
		t.Errorf("a message during the handoff: %s, want held", rep.Events[0].Outcome)
	}
	rep, err := w.Complete("okdesk.create_issue", Mock{Result: map[string]any{"id": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Events[0]; p.Outcome != OutcomeHandled || w.DialogByKey("okdesk:issue:5") == nil {
		t.Errorf("action result during the handoff: %s, key bound %v", p.Outcome, w.DialogByKey("okdesk:issue:5") != nil)
	}
	rep = w.Advance(time.Hour)
	if len(rep.Events) != 1 || rep.Events[0].Outcome != OutcomeHandled || rep.Events[0].To != "timeout" {
		t.Fatalf("timer during the handoff: %+v", rep.Events)
	}
	if s := DescribeProcessed(rep.Events[0]); strings.Contains(s, "[held]") {
		t.Errorf("timer labelled held: %s", s)
	}
}

func TestPendingAndComplete(t *testing.T) {
	w := newWorld(t)
	w.Deliver(built(w.WhatsAppText(anna, "hi")))
	if _, err := w.Complete("okdesk.create_issue", Mock{}); err == nil || err.Error() != "complete okdesk.create_issue: no okdesk.create_issue action is pending" {
		t.Errorf("nothing pending: %v", err)
	}
	w.Mocks().Once("okdesk.create_issue", Mock{Pending: true})
	w.Mocks().Once("okdesk.create_issue", Mock{Pending: true})
	w.Mocks().Once("send", Mock{Pending: true})
	first := w.Deliver(built(w.WhatsAppText(anna, "issue")))
	if len(first.Events) != 1 || len(first.Actions()) != 1 || !first.Actions()[0].Pending || first.Actions()[0].Answered() {
		t.Fatalf("a pending action answered at once: %+v", first.Events)
	}
	var b strings.Builder
	WriteReport(&b, first, "")
	if !strings.Contains(b.String(), "okdesk.create_issue #2 {phone: \"+79161234567\", title: \"T issue\"} → pending") {
		t.Errorf("transcript: %s", b.String())
	}
	w.Deliver(built(w.WhatsAppText(anna, "issue")))
	sendRep := w.Deliver(built(w.WhatsAppText(anna, "zzz"))) // sends "?"
	if len(sendRep.Sent()) != 0 || len(sendRep.Actions()) != 1 {
		t.Errorf("a pending send was delivered at once: %v", sendRep.Sent())
	}
	if got := w.Pending(); len(got) != 3 || got[0].ID != 2 || got[1].ID != 3 || got[2].Kind != "send" {
		t.Fatalf("pending = %+v", got)
	}
	if _, err := w.Complete("okdesk.comment", Mock{}); err == nil || !strings.Contains(err.Error(), "(pending: okdesk.create_issue #2, okdesk.create_issue #3, send #4)") {
		t.Errorf("other kinds pending: %v", err)
	}
	// The oldest one first; a failure creates no issue, a default result numbers it.
	rep, err := w.Complete("okdesk.create_issue", Mock{Fail: &Failure{Code: "server_error", Status: 503, Message: "down"}})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Events[0]
	if p.Completed == nil || p.Completed.ID != 2 || p.Event.Type != event.TypeActionFailed || p.Event.Data["action_id"] != "2" ||
		len(rep.Failed()) != 1 || len(rep.Actions()) != 0 {
		t.Errorf("failed completion: %+v, failed %v", p, rep.Failed())
	}
	if e, _ := p.Event.Data["error"].(map[string]any); e["code"] != "server_error" || e["status"] != 503.0 || e["connector"] != "okdesk" {
		t.Errorf("error = %v", e)
	}
	rep, err = w.Complete("okdesk.create_issue", Mock{})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Events[0].Event.Data; d["id"] != "1001" || d["action_id"] != "3" || w.DialogByKey("okdesk:issue:1001") == nil {
		t.Errorf("default completion: %v", d)
	}
	w.now = w.now.Add(time.Hour)
	rep, err = w.Complete("send", Mock{})
	if err != nil {
		t.Fatal(err)
	}
	if sent := rep.Sent(); len(sent) != 1 || sent[0].Text != "?" || !rep.Events[0].Event.At.Equal(w.Now()) || len(sendRep.Sent()) != 0 {
		t.Errorf("completed send: sent %v at %s; the earlier report now sends %v", sent, rep.Events[0].Event.At, sendRep.Sent())
	}
	if len(w.Pending()) != 0 {
		t.Errorf("still pending: %v", w.Pending())
	}
}
