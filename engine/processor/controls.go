package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// ErrQueued means a control was stored and will be applied in its dialog's turn,
// but was not applied yet when the caller stopped waiting.
var ErrQueued = errors.New("queued: the dialog is busy; the control is applied in its turn")

// controlWait bounds how long Control waits for its step.
const controlWait = 30 * time.Second

// Control applies an operator's control to a dialog. It is checked first — the
// dialog exists (store.ErrNotFound), the control is possible for its flow and fits
// its status (*engine.ErrControl), a free-form message to a WhatsApp customer is
// inside the 24-hour window — then stored as an event of the dialog, so that it
// takes its turn after the dialog's earlier events, and waited for (ErrQueued when
// it has not been applied in time). A control that no longer fits when its turn
// comes fails with *engine.ErrControl. It returns the step.
func (p *Processor) Control(ctx context.Context, c event.Control) (*core.Applied, error) {
	d, err := p.st.LoadDialog(ctx, c.DialogID)
	if err != nil {
		return nil, err
	}
	lastInbound := func(ctx context.Context, channel, contact string) (time.Time, error) {
		return p.lastInbound(ctx, channel, contact, p.cfg.Now(), waba.Window)
	}
	if err := p.core.CheckControl(ctx, &d.Dialog, c, lastInbound); err != nil {
		return nil, err
	}
	ev := c.Event(p.cfg.Now())
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	ev.DedupeKey = "operator:" + hex.EncodeToString(b[:])
	done := make(chan *core.Applied, 1)
	p.waits.Store(ev.DedupeKey, done)
	defer p.waits.Delete(ev.DedupeKey)
	res, err := p.inbox.Append(ctx, []event.Event{ev})
	if err != nil {
		return nil, fmt.Errorf("store the %s control: %w", c.Kind, err)
	}
	wait := time.NewTimer(controlWait)
	defer wait.Stop()
	// Another replica sharing the database may take the event: look at it now and then.
	look := time.NewTicker(controlLook)
	defer look.Stop()
	for {
		select {
		case a := <-done:
			return settledControl(a)
		case <-look.C:
			a, err := p.appliedElsewhere(ctx, res[0].Seq, c.DialogID)
			if a == nil && err == nil {
				continue
			}
			select {
			case mine := <-done: // it was this process after all
				return settledControl(mine)
			default:
				return a, err
			}
		case <-wait.C:
			return nil, ErrQueued
		case <-ctx.Done():
			return nil, ErrQueued
		}
	}
}

// controlLook is how often a waiting control looks whether its event was
// processed by another replica.
const controlLook = 250 * time.Millisecond

func settledControl(a *core.Applied) (*core.Applied, error) {
	if a.Outcome == engine.Failed {
		return a, a.Err
	}
	return a, nil
}

// appliedElsewhere reads a control's stored event: nil, nil while it waits; the
// dialog after it once processed (by any replica); its error once failed.
func (p *Processor) appliedElsewhere(ctx context.Context, seq, dialogID int64) (*core.Applied, error) {
	ev, err := p.st.GetEvent(ctx, seq)
	if err != nil {
		return nil, nil // the next look, or the deadline, decides
	}
	switch ev.Status {
	case store.EventProcessed:
		d, err := p.st.LoadDialog(ctx, dialogID)
		if err != nil {
			return nil, err
		}
		return &core.Applied{Event: *ev, Dialog: d, Flow: d.Flow}, nil
	case store.EventFailed:
		return nil, &engine.ErrControl{Msg: ev.Error}
	case store.EventUnrouted: // the dialog is gone
		return nil, fmt.Errorf("dialog %d: %w", dialogID, store.ErrNotFound)
	}
	return nil, nil
}

// RetryAction queues a dead or failed action again, with the same id (a
// connector's idempotency key) and a fresh budget of attempts; its dialog's history
// says who did it. store.ErrNotFound, or *engine.ErrControl when it is not dead or
// failed.
func (p *Processor) RetryAction(ctx context.Context, id int64, by string) (*store.OutboxItem, error) {
	it, err := p.st.RequeueOutbox(ctx, id, p.cfg.Now())
	if errors.Is(err, store.ErrConflict) && it != nil {
		return it, &engine.ErrControl{Msg: fmt.Sprintf("outbox item %d is %s: only a dead or failed action is retried", id, it.Status)}
	}
	if err != nil {
		return it, err
	}
	if it.DialogID != nil {
		p.note(ctx, *it.DialogID, nil, map[string]any{"control": "retry", "operator": by, "action_id": strconv.FormatInt(id, 10),
			"kind": it.Kind})
	}
	p.outbox.wake()
	return it, nil
}

// Redrive routes an unrouted or failed event again, under the flows in service;
// its dialog's history (when it had one) says who did it. An event that went to
// several dialogs goes again only where it was not processed. store.ErrNotFound, or
// *engine.ErrControl when it is pending or processed.
func (p *Processor) Redrive(ctx context.Context, seq int64, by string) (*store.Event, error) {
	ev, err := p.st.RequeueEvent(ctx, seq)
	if errors.Is(err, store.ErrConflict) && ev != nil {
		return ev, &engine.ErrControl{Msg: fmt.Sprintf("event %d is %s: only an unrouted or failed event is re-driven", seq, ev.Status)}
	}
	if err != nil {
		return ev, err
	}
	if event.HasFetch(&ev.Event) {
		p.w.files.add(ev.Keys) // pending again: its contact's later events wait for it
	}
	// An event that went to several dialogs goes again only to those it failed in
	// (see core.Core.PlanFan): they are the ones whose history tells of it.
	notify := []int64{}
	deliveries, err := p.st.EventDeliveries(ctx, seq)
	if err != nil {
		p.log.Error("re-drive: read the event's deliveries", "event_id", ev.ID, "err", err)
	}
	for _, d := range deliveries {
		if d.Status == store.EventFailed {
			notify = append(notify, d.DialogID)
		}
	}
	if len(notify) == 0 && ev.DialogID != nil {
		notify = append(notify, *ev.DialogID)
	}
	for _, id := range notify {
		p.note(ctx, id, &seq, map[string]any{"control": "redrive", "operator": by})
	}
	p.router.rescanSoon()
	p.Wake()
	return ev, nil
}

// note writes an operator's line to a dialog's history.
func (p *Processor) note(ctx context.Context, dialogID int64, seq *int64, detail map[string]any) {
	err := p.step(ctx, func(tx store.StepTx) error {
		return tx.AppendHistory(store.HistoryEntry{DialogID: dialogID, At: p.cfg.Now(), Kind: dialog.HistOperator,
			EventSeq: seq, Detail: detailJSON(detail)})
	})
	if err != nil {
		p.log.Error("record an operator's control in the history", "dialog_id", dialogID, "err", err)
	}
}

// detailJSON encodes a history line's detail (strings only: it cannot fail).
func detailJSON(detail map[string]any) json.RawMessage {
	b, _ := json.Marshal(detail)
	return b
}
