package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// outboxLoop claims due actions as workers free up and hands them to the workers,
// without waiting for a whole claim to finish: one slow call holds one worker.
func (p *Processor) outboxLoop(ctx context.Context) {
	tick := time.NewTicker(p.cfg.Poll)
	defer tick.Stop()
	defer p.actions.Wait()
	for {
		if free := cap(p.slots) - len(p.slots); free > 0 {
			items, err := p.claimOutbox(ctx, free)
			if err != nil && ctx.Err() == nil {
				p.log.Error("outbox: claim", "err", err)
			}
			if len(items) > 0 {
				p.dispatch(items)
			}
			if len(items) == free {
				continue // there may be more
			}
			// Fewer than asked for: nothing else is due until a step enqueues more
			// (work), a worker frees up (freed) or the poll comes round.

		}
		select {
		case <-ctx.Done():
			return
		case <-p.work:
		case <-p.freed:
		case <-tick.C:
		}
	}
}

// RunOutbox claims the due actions, performs them, waits for them and returns how
// many it performed.
func (p *Processor) RunOutbox(ctx context.Context) (int, error) {
	items, err := p.claimOutbox(ctx, p.cfg.OutboxWorkers*4)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	p.dispatch(items)
	p.actions.Wait()
	return len(items), nil
}

// claimOutbox claims up to limit due actions through the writer (on SQLite a
// transaction of its own would wait for the one connection beside it).
func (p *Processor) claimOutbox(ctx context.Context, limit int) ([]store.OutboxItem, error) {
	var items []store.OutboxItem
	err := p.step(ctx, func(tx store.StepTx) error {
		var err error
		items, err = tx.ClaimOutbox(p.cfg.Now(), limit, p.cfg.Lease)
		return err
	})
	if err != nil {
		// A claim run in a batch that was rolled back (and perhaps not run again)
		// claimed nothing.
		return nil, err
	}
	return items, nil
}

// dispatch hands claimed actions to the workers. Actions of one dialog run one
// after another in the order the flow asked for them (a customer gets messages in
// order): an action of a dialog whose earlier action is running waits behind it,
// holding no worker. Different dialogs run in parallel, up to OutboxWorkers at a
// time; dispatch blocks while all are busy. Results go back to the dialogs as
// action.done / action.failed events.
func (p *Processor) dispatch(items []store.OutboxItem) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	for _, it := range items {
		key := -it.ID // an action without a dialog is a group of its own
		if it.DialogID != nil {
			key = *it.DialogID
		}
		p.actions.Add(1)
		p.busyMu.Lock()
		if queue, running := p.busy[key]; running {
			p.busy[key] = append(queue, it)
			p.busyMu.Unlock()
			continue
		}
		p.busy[key] = nil
		p.busyMu.Unlock()
		p.slots <- struct{}{}
		go p.work1(key, it)
	}
}

// work1 performs it, then the actions queued behind it for the same key.
func (p *Processor) work1(key int64, it store.OutboxItem) {
	for {
		p.perform(it)
		p.actions.Done()
		p.busyMu.Lock()
		queue := p.busy[key]
		if len(queue) == 0 {
			delete(p.busy, key)
			p.busyMu.Unlock()
			break
		}
		it, p.busy[key] = queue[0], queue[1:]
		p.busyMu.Unlock()
	}
	<-p.slots
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// CodeInterrupted is the error code noted on an action whose call was cut off by
// the death of the process that made it (see RecoverClaims).
const CodeInterrupted = "interrupted"

// RecoverClaims puts every running action back to pending, due now, and returns how
// many it released. Call it at start-up, before Run, and only when this process is
// the store's one user (SQLite): then a running action is one whose call the
// previous process was making when it died (kill -9, power loss), and leaving it
// until its lease expires would hold the customer's reply back for up to Lease.
// With replicas (PostgreSQL) a running action may be another replica's call in
// progress, so there the lease alone decides. The interrupted call may have reached
// the remote system: it is made again (at-least-once) and its attempt still counts.
func (p *Processor) RecoverClaims(ctx context.Context) (int, error) {
	n, cursor := 0, ""
	for {
		items, next, err := p.st.ListOutbox(ctx, store.OutboxFilter{Status: store.OutboxRunning}, store.Page{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return n, fmt.Errorf("recover interrupted actions: list running: %w", err)
		}
		for _, it := range items {
			err := p.st.RetryOutbox(ctx, it.ID, p.cfg.Now(), CodeInterrupted, "the process performing it stopped before the outcome was recorded")
			if errors.Is(err, store.ErrConflict) {
				continue // no longer running
			}
			if err != nil {
				return n, fmt.Errorf("recover interrupted action %d: %w", it.ID, err)
			}
			p.log.Warn("action interrupted by a stop; retrying it now", "action_id", it.ID, "kind", it.Kind, "attempt", it.Attempts)
			n++
		}
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}

// perform runs one claimed action. It is never cancelled by shutdown halfway: an
// action that started finishes and records its outcome.
func (p *Processor) perform(it store.OutboxItem) {
	ctx := context.Background()
	now := p.cfg.Now()
	req := connectors.Request{ID: strconv.FormatInt(it.ID, 10), Kind: it.Kind, Now: now, Attempt: it.Attempts}
	if err := json.Unmarshal(it.Params, &req.Params); err != nil {
		p.finish(ctx, it, req, connectors.Result{}, &connectors.Error{Code: connectors.CodeBadParams, Message: "stored parameters are not JSON: " + err.Error()})
		return
	}
	if it.DialogID != nil {
		// A dialog's flow, channel, contact and phone never change: any cached copy will do.
		d, _, ok := p.dialogs.get(*it.DialogID)
		if !ok {
			var err error
			if d, err = p.st.GetDialog(ctx, *it.DialogID); err != nil {
				p.retryLater(ctx, it, "", &connectors.Error{Code: connectors.CodeNetwork, Message: "load dialog: " + err.Error(), Retryable: true})
				return
			}
		}
		req.Dialog = connectors.Dialog{ID: strconv.FormatInt(d.ID, 10), Flow: d.Flow, Channel: d.Channel, Contact: d.ContactID, Phone: d.Phone}
		if d.Channel != "" && d.ContactID != "" {
			var err error
			if req.Dialog.LastInboundAt, err = p.lastInbound(ctx, d.Channel, d.ContactID, now, waba.Window); err != nil {
				p.retryLater(ctx, it, "", &connectors.Error{Code: connectors.CodeNetwork, Message: "load contact window: " + err.Error(), Retryable: true})
				return
			}
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	res, err := p.cfg.Registry.Execute(callCtx, req)
	cancel()
	p.finish(ctx, it, req, res, err)
}

func (p *Processor) finish(ctx context.Context, it store.OutboxItem, req connectors.Request, res connectors.Result, err error) {
	conn := connectors.ConnectorOf(it.Kind, req.Dialog.Channel)
	log := p.log.With("action_id", it.ID, "kind", it.Kind, "dialog_id", req.Dialog.ID, "attempt", it.Attempts)
	if err == nil {
		data := map[string]any{}
		for k, v := range res.Data {
			data[k] = v
		}
		if res.DryRun {
			data["dry_run"] = true
			log.Info("action dry-run (credentials unset)")
		} else {
			log.Info("action done")
		}
		result := mustJSON(data)
		if p.settle(ctx, it, event.TypeActionDone, data, func(tx store.StepTx) error { return tx.CompleteOutbox(it.ID, result) }) {
			p.count(conn, map[bool]string{true: "dry_run", false: "done"}[res.DryRun])
		}
		return
	}
	ce := connectors.AsError(conn, err)
	if ce.Retryable && it.Attempts < p.cfg.MaxAttempts {
		p.retryLater(ctx, it, conn, ce)
		return
	}
	status := store.OutboxFailed
	if ce.Retryable {
		status = store.OutboxDead
	}
	log.Warn("action "+string(status), "code", ce.Code, "status", ce.Status, "api_code", ce.APICode, "err", ce.Error())
	data := map[string]any{"error": map[string]any{"code": ce.Code, "message": ce.Message, "status": ce.Status,
		"api_code": ce.APICode, "connector": ce.Connector, "attempts": it.Attempts, "dead": status == store.OutboxDead}}
	if p.settle(ctx, it, event.TypeActionFailed, data, func(tx store.StepTx) error { return tx.FailOutbox(it.ID, status, ce.Code, ce.Error()) }) {
		p.count(conn, string(status))
	}
}

func (p *Processor) retryLater(ctx context.Context, it store.OutboxItem, conn string, ce *connectors.Error) {
	delay := p.Backoff(it.Attempts, ce.RetryAfter)
	p.log.Warn("action will be retried", "action_id", it.ID, "kind", it.Kind, "attempt", it.Attempts,
		"in", delay.String(), "code", ce.Code, "status", ce.Status, "err", ce.Error())
	if err := p.st.RetryOutbox(ctx, it.ID, p.cfg.Now().Add(delay), ce.Code, ce.Error()); err != nil {
		p.log.Error("outbox: reschedule", "action_id", it.ID, "err", err)
		return
	}
	p.count(conn, "retry")
}

// Backoff is the delay before attempt+1: the step BackoffBase·2^(attempt-1),
// capped at BackoffMax, with equal jitter (uniform in [step/2, step)), and never
// shorter than the server's Retry-After.
func (p *Processor) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	exp := float64(p.cfg.BackoffBase) * math.Pow(2, float64(max(attempt-1, 0)))
	exp = min(exp, float64(p.cfg.BackoffMax))
	d := time.Duration(exp/2 + p.cfg.Jitter()*exp/2) // "equal jitter": at least half the step
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

func (p *Processor) count(conn, result string) {
	if p.met != nil && conn != "" {
		p.met.OutboxAttempts.WithLabelValues(conn, result).Inc()
	}
}

// settle records an action's outcome in one transaction: the outbox item's final
// status (finish) and, for an action of a dialog, the result event that feeds the
// outcome back to it (deduplicated by action id). A crash before the commit repeats
// the call (at-least-once) but never leaves an item done without its event. It
// reports whether the outcome was recorded; an item no longer running (its lease
// ran out and another worker took it over) leaves the outcome to that worker.
func (p *Processor) settle(ctx context.Context, it store.OutboxItem, typ string, data map[string]any, finish func(store.StepTx) error) bool {
	var evs []event.Event
	if it.DialogID != nil {
		data["action"] = it.Kind
		data["action_id"] = strconv.FormatInt(it.ID, 10)
		data["dialog_id"] = strconv.FormatInt(*it.DialogID, 10)
		evs = []event.Event{{Source: event.SourceAction, Type: typ, At: p.cfg.Now(),
			DedupeKey: "action:" + strconv.FormatInt(it.ID, 10) + ":" + strings.TrimPrefix(typ, "action."), Data: data}}
	}
	err := p.step(ctx, func(tx store.StepTx) error {
		if len(evs) > 0 {
			if _, err := tx.AppendEvents(evs); err != nil {
				return fmt.Errorf("store result event: %w", err)
			}
		}
		return finish(tx)
	})
	if err != nil {
		p.log.Error("outbox: record outcome", "action_id", it.ID, "kind", it.Kind, "err", err)
		return false
	}
	if len(evs) > 0 {
		p.Wake()
	}
	return true
}

func (p *Processor) timerLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if _, err := p.FireTimers(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("timers: fire", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// FireTimers turns the timers due now into timer events in the inbox (their dedupe
// key is the timer id, so firing twice stores one event). The timer is marked fired
// when its event is processed, in the same transaction as the step.
func (p *Processor) FireTimers(ctx context.Context) (int, error) {
	due, err := p.st.DueTimers(ctx, p.cfg.Now(), 500)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	var evs []event.Event
	p.timersMu.Lock()
	for _, t := range due {
		if p.queued[t.ID] {
			continue
		}
		p.queued[t.ID] = true
		id := strconv.FormatInt(t.ID, 10)
		evs = append(evs, event.Event{Source: event.SourceTimer, Type: event.TypeTimer, At: t.DueAt,
			DedupeKey: "timer:" + id, Data: map[string]any{"timer": t.Name, "state": t.State,
				"timer_id": id, "dialog_id": strconv.FormatInt(t.DialogID, 10)}})
	}
	p.timersMu.Unlock()
	if len(evs) == 0 {
		return 0, nil
	}
	if _, err := p.inbox.Append(ctx, evs); err != nil {
		p.timersMu.Lock()
		for _, t := range due {
			delete(p.queued, t.ID)
		}
		p.timersMu.Unlock()
		return 0, err
	}
	return len(evs), nil
}

func (p *Processor) unqueueTimer(id int64) {
	p.timersMu.Lock()
	delete(p.queued, id)
	p.timersMu.Unlock()
}
