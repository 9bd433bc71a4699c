package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
)

// TestDelivery: a send's message id and status are recorded; receipts find the
// item by message id and only ever move its delivery forward; failed is final; a
// receipt for an unknown message changes nothing; a requeued send's new message
// starts afresh.
func TestDelivery(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "s")
		it := OutboxItem{DialogID: &d.ID, Kind: "send", Params: []byte(`{}`)}
		e.step(t, func(tx StepTx) error { return tx.Enqueue(&it) })
		if _, err := e.s.ClaimOutbox(ctxT(t), e.clock.Now(), 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		var moved bool
		e.step(t, func(tx StepTx) error {
			var err error
			if moved, err = tx.SetDelivery(it.ID, Delivery{MessageID: "wamid.1", Status: DeliverySent}); err != nil {
				return err
			}
			return tx.CompleteOutbox(it.ID, 0, []byte(`{"message_id":"wamid.1"}`))
		})
		if !moved {
			t.Fatal("SetDelivery did not record the send")
		}
		steps := []struct {
			d     Delivery
			found bool
			moved bool
			want  DeliveryStatus
		}{
			{Delivery{MessageID: "wamid.1", Status: DeliveryRead}, true, true, DeliveryRead},
			{Delivery{MessageID: "wamid.1", Status: DeliveryDelivered}, true, false, DeliveryRead}, // late: ignored
			{Delivery{MessageID: "wamid.other", Status: DeliveryFailed}, false, false, DeliveryRead},
			{Delivery{MessageID: "wamid.1", Status: DeliveryFailed, Code: "131026", Error: "undeliverable"}, true, true, DeliveryFailed},
			{Delivery{MessageID: "wamid.1", Status: DeliveryRead}, true, false, DeliveryFailed}, // failed is final
		}
		for i, st := range steps {
			var got *OutboxItem
			var mv bool
			e.step(t, func(tx StepTx) error {
				var err error
				got, mv, err = tx.Receipt(st.d)
				return err
			})
			if (got != nil) != st.found || mv != st.moved {
				t.Fatalf("step %d: item %v moved %v, want found %v moved %v", i, got, mv, st.found, st.moved)
			}
			now, err := e.s.GetOutbox(ctxT(t), it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if now.Delivery.Status != st.want || now.Delivery.MessageID != "wamid.1" {
				t.Fatalf("step %d: delivery %+v, want %s", i, now.Delivery, st.want)
			}
		}
		now, _ := e.s.GetOutbox(ctxT(t), it.ID)
		if now.Delivery.Code != "131026" || now.Delivery.Error != "undeliverable" || now.Delivery.At.IsZero() {
			t.Errorf("failed delivery %+v", now.Delivery)
		}
		// A requeued send that went out again has a new message: its delivery starts afresh.
		e.step(t, func(tx StepTx) error {
			var err error
			moved, err = tx.SetDelivery(it.ID, Delivery{MessageID: "wamid.2", Status: DeliverySent})
			return err
		})
		if now, _ := e.s.GetOutbox(ctxT(t), it.ID); !moved || now.Delivery.Status != DeliverySent || now.Delivery.MessageID != "wamid.2" {
			t.Errorf("after a new send: %+v", now.Delivery)
		}
	})
}

// TestCompleteSend: a send completed with its message records the message id and
// its delivery in the completion, alone or in a batch, while another completion
// leaves the delivery it has as it is; a receipt later in the same transaction
// finds the item; a send no longer running fails its step as CompleteOutbox does.
func TestCompleteSend(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		d := e.newDialog(t, "f", "s")
		items := make([]OutboxItem, 5)
		e.step(t, func(tx StepTx) error {
			for i := range items {
				items[i] = OutboxItem{DialogID: &d.ID, Kind: "send", Params: []byte(`{}`)}
				if err := tx.Enqueue(&items[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if claimed, err := e.s.ClaimOutbox(ctxT(t), e.clock.Now(), len(items)-1, time.Minute); err != nil || len(claimed) != len(items)-1 {
			t.Fatalf("claimed %d items, %v", len(claimed), err)
		}
		at := t0.Add(-time.Minute)
		send := func(i int, msg string) func(StepTx) error {
			return func(tx StepTx) error {
				return tx.CompleteSend(items[i].ID, 1, []byte(`{"message_id":"`+msg+`"}`),
					Delivery{MessageID: msg, Status: DeliverySent, At: at})
			}
		}
		var receipt *OutboxItem
		errs := e.s.Steps(ctxT(t), []func(StepTx) error{
			send(0, "wamid.a"),
			func(tx StepTx) error {
				if _, err := tx.SetDelivery(items[1].ID, Delivery{Status: DeliveryFailed, Code: "131026", Error: "no"}); err != nil {
					return err
				}
				return tx.CompleteOutbox(items[1].ID, 1, []byte(`{}`))
			},
			send(2, "wamid.c"),
			func(tx StepTx) error {
				var err error
				receipt, _, err = tx.Receipt(Delivery{MessageID: "wamid.c", Status: DeliveryDelivered})
				return err
			},
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("step %d: %v", i+1, err)
			}
		}
		e.step(t, send(3, "wamid.d"))
		if err := e.s.Step(ctxT(t), send(4, "wamid.e")); !errors.Is(err, ErrConflict) {
			t.Errorf("completing a send that was never claimed: %v, want %v", err, ErrConflict)
		}
		if receipt == nil || receipt.ID != items[2].ID {
			t.Errorf("the receipt in the batch found %+v, want item %d", receipt, items[2].ID)
		}
		for i, want := range []Delivery{
			{MessageID: "wamid.a", Status: DeliverySent, At: at},
			{Status: DeliveryFailed, Code: "131026", Error: "no", At: t0},
			{MessageID: "wamid.c", Status: DeliveryDelivered, At: t0},
			{MessageID: "wamid.d", Status: DeliverySent, At: at},
			{},
		} {
			got, err := e.s.GetOutbox(ctxT(t), items[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus := OutboxDone
			if i == 4 {
				wantStatus = OutboxPending
			}
			if got.Status != wantStatus || got.Delivery.MessageID != want.MessageID || got.Delivery.Status != want.Status ||
				got.Delivery.Code != want.Code || got.Delivery.Error != want.Error || !got.Delivery.At.Equal(want.At) {
				t.Errorf("item %d: %s %+v, want %s %+v", i, got.Status, got.Delivery, wantStatus, want)
			}
		}
	})
}

// TestReceiptsOf: the receipts of a message are read back when one of them found
// no item; on SQLite, where one process applies every receipt, not otherwise (a
// receipt stored but not yet applied finds the item when it is), and PostgreSQL
// reads them always.
func TestReceiptsOf(t *testing.T) {
	eachDB(t, func(t *testing.T, e *env) {
		receipt := func(msg, status string) event.Event {
			return event.Event{Source: event.SourceWABA, Type: event.TypeWABAStatus, At: t0, DedupeKey: msg + ":" + status,
				Data: map[string]any{"status": status, "message_id": msg}}
		}
		append1(t, e, receipt("wamid.early", "read"), receipt("wamid.stored", "read"))
		e.step(t, func(tx StepTx) error {
			it, _, err := tx.Receipt(Delivery{MessageID: "wamid.early", Status: DeliveryRead})
			if it != nil {
				t.Errorf("a receipt of an unknown message found %+v", it)
			}
			return err
		})
		read := func(msg string) int {
			var got []Event
			e.step(t, func(tx StepTx) error {
				var err error
				got, err = tx.ReceiptsOf(msg, []string{msg + ":delivered", msg + ":read"})
				return err
			})
			return len(got)
		}
		stored := 0
		if e.pg {
			stored = 1
		}
		for msg, want := range map[string]int{"wamid.early": 1, "wamid.stored": stored, "wamid.none": 0} {
			if got := read(msg); got != want {
				t.Errorf("receipts of %s: %d, want %d", msg, got, want)
			}
		}
	})
}

// TestStrayReceipts: a message is remembered for strayFor; a memory that overflows
// forgets what has expired, and when that is not enough answers yes for every
// message until what it forgot would have expired.
func TestStrayReceipts(t *testing.T) {
	now := t0
	m := newStrayReceipts()
	m.now = func() time.Time { return now }
	m.add("a")
	tests := []struct {
		after time.Duration
		msg   string
		want  bool
	}{
		{0, "a", true},
		{0, "b", false},
		{strayFor - time.Second, "a", true},
		{strayFor, "a", false},
	}
	for _, tc := range tests {
		now = t0.Add(tc.after)
		if got := m.mayWait(tc.msg); got != tc.want {
			t.Errorf("after %v: mayWait(%s) = %v, want %v", tc.after, tc.msg, got, tc.want)
		}
	}

	now = t0
	for i := range strayCap {
		m.add(fmt.Sprint("old", i))
	}
	now = t0.Add(strayFor)
	m.add("new") // the old ones have expired: they make room
	if len(m.seen) != 1 || !m.mayWait("new") || m.mayWait("other") {
		t.Fatalf("after the expired were forgotten: %d remembered", len(m.seen))
	}
	for i := range strayCap {
		m.add(fmt.Sprint("more", i))
	}
	if len(m.seen) != 1 || !m.mayWait("other") {
		t.Fatalf("overflowed: %d remembered, mayWait(other) %v; want 1, true", len(m.seen), m.mayWait("other"))
	}
	now = now.Add(strayFor)
	if m.mayWait("other") {
		t.Error("still answering yes for every message after what was forgotten expired")
	}
}
