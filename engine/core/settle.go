package core

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Perform makes one attempt at a claimed outbox item through the registry. d is the
// item's dialog (nil for an item without one) and lastInbound the time of that
// dialog contact's last inbound message, which WhatsApp's 24-hour window starts
// from. The error, if any, is typed (*connectors.Error) or treated as a network
// failure.
func (c *Core) Perform(ctx context.Context, it store.OutboxItem, d *dialog.Dialog, lastInbound time.Time) (connectors.Result, error) {
	req := connectors.Request{ID: strconv.FormatInt(it.ID, 10), Kind: it.Kind, Now: c.cfg.Now(), Attempt: it.Attempts,
		LastInboundAt: lastInbound}
	if d != nil {
		req.Dialog = *d
	}
	if err := json.Unmarshal(it.Params, &req.Params); err != nil {
		return connectors.Result{}, &connectors.Error{Code: connectors.CodeBadParams, Message: "stored parameters are not JSON: " + err.Error()}
	}
	return c.cfg.Registry.Execute(ctx, req)
}

// Settlement is the outcome of one attempt at an outbox item, decided by the rules:
// done; tried again later (a retryable failure with attempts left, after a backoff
// that honours Retry-After); failed for good (the remote side refused it); or dead
// (the retries ran out). Done, failed and dead go back to the item's dialog, when
// it has one, as an action.done or action.failed event.
type Settlement struct {
	Item      store.OutboxItem
	Status    store.OutboxStatus // done, pending (tried again at NextAt), failed or dead
	NextAt    time.Time
	Result    json.RawMessage   // with done: the result's data
	Error     *connectors.Error // otherwise
	DryRun    bool              // with done: credentials were unset, nothing was sent
	Connector string            // who performed it, for logs and metrics
	Flow      string            // the flow of the item's dialog ("" without one)
	// Delivery is what a send's outcome says of its message (sent with its id, or
	// failed); nil for other actions and for a retry.
	Delivery *store.Delivery
	// Event is the result event for the item's dialog; nil for a retry and for an
	// item without a dialog.
	Event *event.Event
	// FilesOf, for a settled fetch (event.KindFetch), is the Seq of the message
	// whose files it fetched, and FilesData what the message's data gets: the
	// files, or why there are none. The message then goes on to its dialog.
	FilesOf   int64
	FilesData map[string]any
}

// Settle decides what an attempt at it came to, from the attempt's result and
// error. d is the item's dialog (nil for an item without one, or when it could not
// be read): its channel names the connector a send is attributed to (in the
// result's error, logs and metrics), its flow labels them.
func (c *Core) Settle(it store.OutboxItem, d *dialog.Dialog, res connectors.Result, err error) Settlement {
	var channel, flow string
	if d != nil {
		channel, flow = d.Channel, d.Flow
	}
	conn := connectors.ConnectorOf(it.Kind, channel)
	s := Settlement{Item: it, Connector: conn, Flow: flow}
	var data map[string]any
	if err == nil {
		data = make(map[string]any, len(res.Data)+1)
		for k, v := range res.Data {
			data[k] = v
		}
		if res.DryRun {
			data["dry_run"] = true
		}
		s.Status, s.Result, s.DryRun = store.OutboxDone, mustJSON(data), res.DryRun
		s.Delivery = sendDelivery(it, data, nil, c.cfg.Now())
	} else {
		ce := connectors.AsError(conn, err)
		s.Error = ce
		switch {
		case ce.Retryable && it.Attempts < c.cfg.MaxAttempts:
			s.Status, s.NextAt = store.OutboxPending, c.cfg.Now().Add(c.Backoff(it.Attempts, ce.RetryAfter))
			return s
		case ce.Retryable:
			s.Status = store.OutboxDead
		default:
			s.Status = store.OutboxFailed
		}
		s.Delivery = sendDelivery(it, nil, ce, c.cfg.Now())
		data = map[string]any{event.FieldError: map[string]any{"code": ce.Code, "message": ce.Message, "status": ce.Status,
			"api_code": ce.APICode, "connector": ce.Connector, "attempts": it.Attempts, "dead": s.Status == store.OutboxDead}}
	}
	if it.Kind == event.KindFetch {
		s.FilesOf, s.FilesData = filesOf(it, data, err != nil)
	}
	if it.DialogID != nil {
		ev := event.ActionResult{ActionID: it.ID, DialogID: *it.DialogID, Kind: it.Kind, Failed: err != nil,
			Data: data, Round: it.Requeues}.Event(c.cfg.Now())
		s.Event = &ev
	}
	return s
}

// Record writes a settlement in tx: the item's new status and, when there is one,
// the result event (deduplicated by action id), so an item is never done without
// its event. It returns the result event as stored (its Seq set; zero when there
// is none, or when it was stored before: a duplicate). The item is finished only
// while it still runs under the claim the attempt was made by (its Attempts):
// store.ErrConflict means it no longer does (its lease ran out and another worker
// claimed it again, which records its own outcome), and the transaction must be
// rolled back, result event and all.
func (s Settlement) Record(tx store.StepTx) (store.Event, error) {
	var stored store.Event
	if s.Event != nil {
		res, err := tx.AppendEvents([]event.Event{*s.Event})
		if err != nil {
			return stored, fmt.Errorf("store result event: %w", err)
		}
		if !res[0].Duplicate {
			stored = store.Event{Event: *s.Event, Seq: res[0].Seq, Status: store.EventPending}
			stored.ID = strconv.FormatInt(res[0].Seq, 10)
		}
	}
	// A send that went out records its message with its completion, below.
	sent := s.Status == store.OutboxDone && s.Delivery != nil && s.Delivery.MessageID != ""
	if d := s.Delivery; d != nil && !sent {
		moved, err := tx.SetDelivery(s.Item.ID, *d)
		if err != nil {
			return stored, err
		}
		if moved && d.MessageID != "" {
			if err := earlierReceipts(tx, d.MessageID, d.At); err != nil {
				return stored, err
			}
		}
	}
	if s.FilesOf != 0 {
		if err := tx.SettleFiles(s.FilesOf, s.FilesData); err != nil {
			return stored, err
		}
	}
	var err error
	switch s.Status {
	case store.OutboxDone:
		if !sent {
			err = tx.CompleteOutbox(s.Item.ID, s.Item.Attempts, s.Result)
			break
		}
		// The message id is new to the item (CompleteSend), so its delivery moved:
		// receipts about it may have come first.
		d := s.Delivery
		if err = tx.CompleteSend(s.Item.ID, s.Item.Attempts, s.Result, *d); err == nil {
			err = earlierReceipts(tx, d.MessageID, d.At)
		}
	case store.OutboxPending:
		err = tx.RetryOutbox(s.Item.ID, s.Item.Attempts, s.NextAt, s.Error.Code, s.Error.Error())
	default:
		err = tx.FailOutbox(s.Item.ID, s.Item.Attempts, s.Status, s.Error.Code, s.Error.Error())
	}
	return stored, err
}

// filesOf reads a settled fetch: the Seq of its message, and the fields the
// message's data gets (event.FieldFile and FieldFiles, or FieldFileError).
func filesOf(it store.OutboxItem, data map[string]any, failed bool) (int64, map[string]any) {
	var p struct {
		Event int64 `json:"event"`
	}
	if json.Unmarshal(it.Params, &p) != nil || p.Event == 0 {
		return 0, nil
	}
	if failed {
		e, _ := data[event.FieldError].(map[string]any)
		return p.Event, map[string]any{event.FieldFileError: map[string]any{"code": e["code"], "message": e["message"]}}
	}
	files, _ := data["files"].([]any)
	if files == nil {
		files = []any{}
	}
	out := map[string]any{event.FieldFiles: files, event.FieldFile: nil}
	if len(files) > 0 {
		out[event.FieldFile] = files[0]
	}
	return p.Event, out
}

// TimerEvents returns the events of timers that fell due, in order.
func TimerEvents(due []store.Timer) []event.Event {
	out := make([]event.Event, len(due))
	for i, t := range due {
		out[i] = event.TimerFired(event.Timer{ID: t.ID, DialogID: t.DialogID, State: t.State, Name: t.Name}, t.DueAt)
	}
	return out
}
