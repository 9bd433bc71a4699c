package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// TestSendDelivery: a send's outcome is its message's first delivery report: sent
// with the id it returned, or failed for good with the API's code (a Telegram 403:
// the customer blocked the bot); a retry, another action or a send without an id
// reports nothing.
func TestSendDelivery(t *testing.T) {
	w := newWorld(t)
	dialogID := int64(3)
	send := store.OutboxItem{ID: 9, DialogID: &dialogID, Kind: "send", Attempts: 1}
	blocked := connectors.HTTPError("telegram", 403, 0, "sendMessage: Forbidden: bot was blocked by the user")
	blocked.APICode = 403
	tests := []struct {
		name string
		item store.OutboxItem
		res  connectors.Result
		err  error
		want *store.Delivery
	}{
		{"sent", send, connectors.Result{Data: map[string]any{"message_id": "wamid.1"}}, nil,
			&store.Delivery{MessageID: "wamid.1", Status: store.DeliverySent}},
		{"a Telegram id is a number", send, connectors.Result{Data: map[string]any{"message_id": 812.0}}, nil,
			&store.Delivery{MessageID: "812", Status: store.DeliverySent}},
		{"no id: nothing to track", send, connectors.Result{Data: map[string]any{"dry_run": true}}, nil, nil},
		{"blocked", send, connectors.Result{}, blocked,
			&store.Delivery{Status: store.DeliveryFailed, Code: "403", Error: blocked.Message}},
		{"a retry is not a delivery yet", send, connectors.Result{}, connectors.HTTPError("telegram", 503, 0, "down"), nil},
		{"another action", store.OutboxItem{ID: 9, DialogID: &dialogID, Kind: "okdesk.comment", Attempts: 1},
			connectors.Result{Data: map[string]any{"message_id": "x"}}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := w.c.Settle(tc.item, &dialog.Dialog{ID: 3, Flow: "core", Channel: "telegram"}, tc.res, tc.err)
			got := s.Delivery
			if got != nil {
				got.At = got.At.UTC()
			}
			switch {
			case (got == nil) != (tc.want == nil):
				t.Fatalf("delivery %+v, want %+v", got, tc.want)
			case got != nil && (got.MessageID != tc.want.MessageID || got.Status != tc.want.Status ||
				got.Code != tc.want.Code || got.Error != tc.want.Error || got.At.IsZero()):
				t.Errorf("delivery %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestBusinessNumbers: with numbers configured, a WhatsApp event for another
// number is unrouted with the reason; a WhatsApp event never reaches the dialog of
// another number through its phone: key; a dialog keeps the number it started on.
func TestBusinessNumbers(t *testing.T) {
	w := newWorld(t)
	w.c.cfg.BusinessNumbers = []string{"111", "222"}
	to := func(number, text string) event.Event {
		ev := w.wa(text)
		ev.Keys = []string{event.WABAKey(number, "7916"), "phone:7916"}
		ev.Data[event.FieldPhoneNumberID] = number
		return ev
	}
	first := w.process(to("111", "hello"))
	if first.Outcome != engine.Started || first.Dialog.BusinessNumber != "111" {
		t.Fatalf("first message: %s, number %q", first.Outcome, first.Dialog.BusinessNumber)
	}
	second := w.process(to("222", "hello"))
	if second.Outcome != engine.Started || second.Dialog.ID == first.Dialog.ID || second.Dialog.BusinessNumber != "222" {
		t.Fatalf("the other number's message: %s in dialog %d (number %q)", second.Outcome, second.Dialog.ID, second.Dialog.BusinessNumber)
	}
	other := w.process(to("333", "hello"))
	if other.Outcome != engine.Unrouted {
		t.Fatalf("unconfigured number: %s", other.Outcome)
	}
	if e := w.event(other.Event.Seq); e.Status != store.EventUnrouted || e.Error != "business number 333 is not configured (WABA_PHONE_NUMBER_ID)" {
		t.Errorf("unconfigured number's event: %s %q", e.Status, e.Error)
	}
	again := w.process(to("111", "again"))
	if again.Dialog == nil || again.Dialog.ID != first.Dialog.ID {
		t.Errorf("the first number's next message went to %+v", again.Dialog)
	}
}

// TestReceiptBeforeTheSendIsRecorded: Meta may report a message before the send's
// answer is committed. A receipt processed then finds no item, and is applied when
// the send is recorded; one stored then but processed after the record (which
// does not look for it on SQLite) is applied when it is processed. Either way the
// delivery fails and the dialog gets waba.message_failed.
func TestReceiptBeforeTheSendIsRecorded(t *testing.T) {
	for _, processedFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("processed before the record: ", processedFirst), func(t *testing.T) {
			w := newWorld(t)
			started := w.process(w.wa("hello"))
			if len(started.Actions) != 1 || started.Actions[0].Kind != "send" {
				t.Fatalf("actions %+v", started.Actions)
			}
			status := w.wa("")
			status.Type, status.DedupeKey = event.TypeWABAStatus, "waba:wamid.early:failed"
			status.Data = map[string]any{"status": "failed", "message_id": "wamid.early", "error_code": 131026.0,
				"error_title": "Message undeliverable"}
			seq := w.store(status)
			if processedFirst {
				w.processStored(seq)
			}

			items, err := w.st.ClaimOutbox(w.ctx, w.now, 1, time.Minute)
			if err != nil || len(items) != 1 {
				t.Fatalf("claim: %v %v", items, err)
			}
			s := w.c.Settle(items[0], &started.Dialog.Dialog, connectors.Result{Data: map[string]any{"message_id": "wamid.early"}}, nil)
			if err := w.st.Step(w.ctx, func(tx store.StepTx) error { _, err := s.Record(tx); return err }); err != nil {
				t.Fatal(err)
			}
			if !processedFirst {
				w.processStored(seq)
			}
			it, err := w.st.GetOutbox(w.ctx, items[0].ID)
			if err != nil || it.Delivery.Status != store.DeliveryFailed || it.Delivery.Code != "131026" {
				t.Fatalf("delivery %+v %v", it.Delivery, err)
			}
			pending, err := w.st.PendingEvents(w.ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			var failed []store.Event
			for i := range pending {
				if pending[i].Type == event.TypeWABAMessageFailed {
					failed = append(failed, pending[i])
				}
			}
			if len(failed) != 1 {
				t.Fatalf("%d waba.message_failed among %d pending events, want 1", len(failed), len(pending))
			}
			if id, ok := event.Target(&failed[0].Event); !ok || id != started.Dialog.ID || failed[0].Data[event.FieldErrorCode] != 131026.0 {
				t.Errorf("waba.message_failed %+v", failed[0].Data)
			}
		})
	}
}
