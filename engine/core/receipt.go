package core

import (
	"slices"
	"strconv"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// unconfigured says why a WhatsApp event is about a business number fixit does not
// serve, or "" when it is served (or names none, or no numbers are configured).
func (c *Core) unconfigured(ev *event.Event) string {
	if len(c.cfg.BusinessNumbers) == 0 || ev.Source != event.SourceWABA || event.Addressed(ev) {
		return ""
	}
	n := event.BusinessNumber(ev)
	if n == "" || slices.Contains(c.cfg.BusinessNumbers, n) {
		return ""
	}
	return "business number " + n + " is not configured (WABA_PHONE_NUMBER_ID)"
}

// receipt applies a waba.status event to the outbox item that sent its message
// (applyReceipt). The status event goes on to be routed as any other.
func (c *Core) receipt(tx store.StepTx, a *Applied, now time.Time) error {
	n, err := applyReceipt(tx, a.Event, now)
	a.Raised += n
	return err
}

// applyReceipt applies a waba.status event to the outbox item that sent its
// message: its delivery moves forward only (sent < delivered < read; failed is
// final). A receipt for a message no item sent changes nothing, and one applied
// before changes nothing again. When the delivery moves to failed or read, the
// item's dialog gets a history line; a failure also becomes a waba.message_failed
// event addressed to that dialog, which its flow may handle. It returns how many
// events it stored.
func applyReceipt(tx store.StepTx, ev store.Event, now time.Time) (int, error) {
	d := store.Delivery{MessageID: text(ev.Data["message_id"]), Status: store.DeliveryStatus(text(ev.Data["status"])),
		Error: text(ev.Data["error_title"]), At: ev.At}
	code, _ := ev.Data["error_code"].(float64)
	if code != 0 {
		d.Code = strconv.FormatFloat(code, 'f', -1, 64)
	}
	it, moved, err := tx.Receipt(d)
	if err != nil || it == nil || !moved || it.DialogID == nil {
		return 0, err
	}
	if d.Status != store.DeliveryFailed && d.Status != store.DeliveryRead {
		return 0, nil
	}
	detail := map[string]any{"status": string(d.Status), event.FieldMessageID: d.MessageID,
		event.FieldOutboxID: strconv.FormatInt(it.ID, 10)}
	if d.Status == store.DeliveryFailed {
		detail[event.FieldErrorCode], detail[event.FieldErrorTitle] = code, d.Error
	}
	if err := tx.AppendHistory(store.HistoryEntry{DialogID: *it.DialogID, At: now, Kind: dialog.HistDelivery,
		EventSeq: &ev.Seq, Detail: mustJSON(detail)}); err != nil {
		return 0, err
	}
	if d.Status != store.DeliveryFailed {
		return 0, nil
	}
	failed := event.MessageFailed{DialogID: *it.DialogID, OutboxID: it.ID, MessageID: d.MessageID,
		ErrorCode: int(code), ErrorTitle: d.Error, Recipient: ev.Contact}.Event(ev.At)
	if failed.At.IsZero() {
		failed.At = now
	}
	res, err := tx.AppendEvents([]event.Event{failed})
	if err != nil || res[0].Duplicate {
		return 0, err
	}
	return 1, nil
}

// earlierReceipts applies the receipts about a message that were stored before its
// send was recorded (Meta may report a message before the send's answer is
// committed): the furthest first, so the others change nothing. The store reads
// them only when one may be waiting (StepTx.ReceiptsOf).
func earlierReceipts(tx store.StepTx, messageID string, now time.Time) error {
	var keys []string
	for _, st := range slices.Backward(store.DeliveryStatuses) {
		if st != store.DeliverySent {
			keys = append(keys, waba.StatusDedupeKey(messageID, string(st)))
		}
	}
	evs, err := tx.ReceiptsOf(messageID, keys)
	if err != nil || len(evs) == 0 {
		return err
	}
	slices.SortFunc(evs, func(a, b store.Event) int {
		return store.DeliveryStatus(text(b.Data["status"])).Rank() - store.DeliveryStatus(text(a.Data["status"])).Rank()
	})
	for _, ev := range evs {
		if ev.Type != event.TypeWABAStatus || text(ev.Data["message_id"]) != messageID {
			continue
		}
		if _, err := applyReceipt(tx, ev, now); err != nil {
			return err
		}
	}
	return nil
}

// sendDelivery is what a send's own outcome says of its message: sent with the
// message id the channel returned, or failed for good with the error's code (the
// API's own, such as Graph's 131026 or Telegram's 403, else the connector's) and
// message. Nil for other actions and for a send that returned no id.
func sendDelivery(it store.OutboxItem, data map[string]any, ce *connectors.Error, now time.Time) *store.Delivery {
	if it.Kind != "send" {
		return nil
	}
	if ce != nil {
		code := ce.Code
		if ce.APICode != 0 {
			code = strconv.Itoa(ce.APICode)
		}
		return &store.Delivery{Status: store.DeliveryFailed, Code: code, Error: ce.Message, At: now}
	}
	id := connectors.MessageID(data)
	if id == "" {
		return nil
	}
	return &store.Delivery{MessageID: id, Status: store.DeliverySent, At: now}
}

// text reads a string field of decoded JSON; anything else reads as "".
func text(v any) string {
	s, _ := v.(string)
	return s
}
