package store

import (
	"testing"
	"time"
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
