package sim

import (
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
)

var anna = WhatsAppContact{Phone: "+79161234567", Name: "Анна"}

func TestActionResultEvents(t *testing.T) {
	w := NewWorld(demoFlows(t), Options{})
	w.Inject(w.WhatsAppText(anna, "hi"))
	w.Mocks().Once("okdesk.create_issue", Mock{Fail: &Failure{Code: "bad_request", Message: "no", Status: 422}})
	rep := w.Inject(w.WhatsAppText(anna, "issue"))
	if len(rep.Events) != 2 {
		t.Fatalf("events: %d", len(rep.Events))
	}
	got := rep.Events[1].Event
	e, _ := got.Data["error"].(map[string]any)
	if got.Type != event.TypeActionFailed || got.Source != event.SourceAction || got.Data["action"] != "okdesk.create_issue" ||
		got.Data["action_id"] != "2" || got.Data["dialog_id"] != "1" || e["code"] != "bad_request" || e["status"] != 422.0 || e["message"] != "no" {
		t.Errorf("action.failed = %+v", got)
	}
	rep = w.Inject(w.WhatsAppText(anna, "issue"))
	done := rep.Events[1].Event
	if done.Type != event.TypeActionDone || done.Data["id"] != "1001" || done.Data["contact_id"] != "1" || done.Data["action_id"] != "3" {
		t.Errorf("action.done = %+v", done)
	}
	if d := w.DialogByKey("okdesk:issue:1001"); d == nil || d.ID != "1" {
		t.Errorf("issue key not bound: %v", d)
	}
}

func TestWindowAndFallback(t *testing.T) {
	tests := []struct {
		name     string
		wait     time.Duration
		params   map[string]any
		via      string
		failCode string
	}{
		{"inside", 23*time.Hour + 59*time.Minute, map[string]any{"text": "x"}, "text", ""},
		{"exactly 24h is closed", 24 * time.Hour, map[string]any{"text": "x"}, "", CodeWindowClosed},
		{"fallback", 25 * time.Hour, map[string]any{"text": "x", "fallback": map[string]any{"name": "t", "language": "ru", "params": []any{"1"}}}, "fallback_template", ""},
		{"template ignores the window", 25 * time.Hour, map[string]any{"template": map[string]any{"name": "t"}}, "template", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWorld(demoFlows(t), Options{})
			w.Inject(w.WhatsAppText(anna, "hi"))
			w.now = w.now.Add(tc.wait)
			a, ev := w.perform(w.Dialog("1"), engine.Effect{Kind: "send", Params: tc.params})
			if tc.failCode != "" {
				if a.Failure == nil || a.Failure.Code != tc.failCode || ev.Type != event.TypeActionFailed {
					t.Fatalf("failure = %+v, event %s", a.Failure, ev.Type)
				}
				return
			}
			if a.Failure != nil || a.Message.Via != tc.via || ev.Data["via"] != tc.via {
				t.Fatalf("via = %q (%+v), want %q", a.Message.Via, a.Failure, tc.via)
			}
		})
	}
}

func TestTimersFireInDueOrderAtTheirTime(t *testing.T) {
	w := NewWorld(demoFlows(t), Options{})
	w.Inject(w.WhatsAppText(anna, "hi"))
	w.Advance(30 * time.Minute)
	w.Inject(w.WhatsAppText(WhatsAppContact{Phone: "+79160000001"}, "hi")) // dialog 2, its timer 30m later
	if got := w.PendingTimers("1"); len(got) != 1 {
		t.Fatalf("timers of dialog 1: %v", got)
	}
	rep := w.Advance(3 * time.Hour)
	var fired []string
	for _, p := range rep.Events {
		if p.Event.Type == event.TypeTimer {
			fired = append(fired, p.Dialog+"@"+p.Event.At.Format("15:04"))
		}
	}
	if len(fired) != 2 || fired[0] != "1@11:00" || fired[1] != "2@11:30" {
		t.Errorf("fired = %v", fired)
	}
	if w.Now().Format("15:04") != "13:30" || w.Dialog("1").Status != engine.StatusAbandoned {
		t.Errorf("now %s, dialog 1 %s", w.Now(), w.Dialog("1").Status)
	}
	// An ended dialog released its keys: the contact starts a new dialog.
	rep = w.Inject(w.WhatsAppText(anna, "again"))
	if !rep.Events[0].Started || rep.Events[0].Dialog != "3" {
		t.Errorf("after the end: %+v", rep.Events[0])
	}
}

func TestLeavingAStateCancelsItsTimers(t *testing.T) {
	w := NewWorld(demoFlows(t), Options{})
	w.Inject(w.WhatsAppText(anna, "hi"))
	w.Inject(w.WhatsAppButton(anna, "a", "Альфа"))
	if got := w.PendingTimers("1"); len(got) != 0 {
		t.Errorf("timers after leaving menu: %v", got)
	}
	if rep := w.Advance(2 * time.Hour); len(rep.Events) != 0 {
		t.Errorf("a cancelled timer fired: %+v", rep.Events[0])
	}
}

func TestDuplicatesAndUnrouted(t *testing.T) {
	w := NewWorld(demoFlows(t), Options{})
	ev := w.WhatsAppText(anna, "hi")
	w.Inject(ev)
	if rep := w.Inject(ev); rep.Events[0].Outcome != OutcomeDuplicate || len(rep.Events) != 1 {
		t.Errorf("duplicate: %+v", rep.Events[0])
	}
	if rep := w.Inject(w.OkdeskStatus(OkdeskIssue{ID: "5"}, "completed", "")); rep.Events[0].Outcome != OutcomeUnrouted {
		t.Errorf("unrouted: %+v", rep.Events[0])
	}
}

func TestKeyBoundElsewhereIsNotStolen(t *testing.T) {
	w := NewWorld(demoFlows(t), Options{})
	w.Mocks().Set("okdesk.create_issue", Mock{Result: map[string]any{"id": "9"}})
	other := WhatsAppContact{Phone: "+79160000001"}
	w.Inject(w.WhatsAppText(anna, "hi"))
	w.Inject(w.WhatsAppText(other, "hi"))
	w.Inject(w.WhatsAppText(anna, "issue"))
	rep := w.Inject(w.WhatsAppText(other, "issue"))
	if d := w.DialogByKey("okdesk:issue:9"); d == nil || d.ID != "1" {
		t.Fatalf("okdesk:issue:9 bound to %v", d)
	}
	if notes := rep.Events[1].Notes; len(notes) != 1 {
		t.Errorf("notes = %v", notes)
	}
}

func TestEventShapes(t *testing.T) {
	w := NewWorld(demoFlows(t), Options{})
	pay := w.OneCPayment(Payment{Status: "paid", OkdeskIssueID: "1542", Phone: "+7 916 123-45-67"})
	if len(pay.Keys) != 3 || pay.Keys[1] != "okdesk:issue:1542" || pay.Keys[2] != "phone:79161234567" || pay.Data["okdesk_issue_id"] != "1542" {
		t.Errorf("payment = %+v", pay)
	}
	img := w.WhatsAppMedia(anna, "image", "cap", "")
	if img.Text != "cap" || img.Data["kind"] != "image" || img.Data["caption"] != "cap" || img.Data["media_id"] == nil {
		t.Errorf("image = %+v", img)
	}
	c := w.OkdeskComment(OkdeskIssue{ID: "7"}, "t", false, "employee")
	if c.Type != "okdesk.new_comment" || c.Data["comment_public"] != false || c.Data["issue_id"] != "7" || c.Text != "t" {
		t.Errorf("comment = %+v", c)
	}
	cb := w.TelegramCallback(TelegramChat{ChatID: "42"}, "yes")
	if cb.Type != event.TypeTelegramCallback || cb.Keys[0] != "telegram:42" || cb.Data["data"] != "yes" || cb.Text != "yes" {
		t.Errorf("callback = %+v", cb)
	}
}
