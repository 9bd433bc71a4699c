package processor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/store"
)

// outbox performs the outbound actions: it claims due items as workers free up,
// runs one dialog's actions in order and different dialogs in parallel, and
// settles each outcome with the core (done, retried later, failed or dead; the
// result goes back to the dialog as an event).
type outbox struct {
	p     *Processor
	work  chan struct{} // new actions stored: look for them
	freed chan struct{} // a worker finished: claim more

	slots   chan struct{}  // workers at work
	actions sync.WaitGroup // claimed actions not yet performed
	busyMu  sync.Mutex
	busy    map[int64][]store.OutboxItem // dialog (or -action id) → actions waiting behind its running one
}

func newOutbox(p *Processor, workers int) *outbox {
	return &outbox{p: p, work: make(chan struct{}, 1), freed: make(chan struct{}, 1),
		slots: make(chan struct{}, workers), busy: map[int64][]store.OutboxItem{}}
}

// wake tells the outbox loop that actions were committed.
func (o *outbox) wake() {
	select {
	case o.work <- struct{}{}:
	default:
	}
}

// loop claims due actions as workers free up and hands them to the workers,
// without waiting for a whole claim to finish: one slow call holds one worker.
func (o *outbox) loop(ctx context.Context) {
	tick := time.NewTicker(o.p.cfg.Poll)
	defer tick.Stop()
	defer o.actions.Wait()
	for {
		if free := cap(o.slots) - len(o.slots); free > 0 {
			items, err := o.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				o.p.log.Error("outbox: claim", "err", err)
			}
			if len(items) > 0 {
				o.dispatch(items)
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
		case <-o.work:
		case <-o.freed:
		case <-tick.C:
		}
	}
}

// runOnce claims the due actions, performs them, waits for them and returns how
// many it performed.
func (o *outbox) runOnce(ctx context.Context) (int, error) {
	items, err := o.claim(ctx, cap(o.slots)*4)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	o.dispatch(items)
	o.actions.Wait()
	return len(items), nil
}

// claim claims up to limit due actions through the writer (on SQLite a
// transaction of its own would wait for the one connection beside it).
func (o *outbox) claim(ctx context.Context, limit int) ([]store.OutboxItem, error) {
	var items []store.OutboxItem
	err := o.p.step(ctx, func(tx store.StepTx) error {
		var err error
		items, err = tx.ClaimOutbox(o.p.cfg.Now(), limit, o.p.cfg.Lease)
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
// holding no worker. Different dialogs run in parallel, up to the number of
// workers; dispatch blocks while all are busy.
func (o *outbox) dispatch(items []store.OutboxItem) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	for _, it := range items {
		key := -it.ID // an action without a dialog is a group of its own
		if it.DialogID != nil {
			key = *it.DialogID
		}
		o.actions.Add(1)
		o.busyMu.Lock()
		if queue, running := o.busy[key]; running {
			o.busy[key] = append(queue, it)
			o.busyMu.Unlock()
			continue
		}
		o.busy[key] = nil
		o.busyMu.Unlock()
		o.slots <- struct{}{}
		go o.work1(key, it)
	}
}

// work1 performs it, then the actions queued behind it for the same key.
func (o *outbox) work1(key int64, it store.OutboxItem) {
	for {
		o.perform(it)
		o.actions.Done()
		o.busyMu.Lock()
		queue := o.busy[key]
		if len(queue) == 0 {
			delete(o.busy, key)
			o.busyMu.Unlock()
			break
		}
		it, o.busy[key] = queue[0], queue[1:]
		o.busyMu.Unlock()
	}
	<-o.slots
	select {
	case o.freed <- struct{}{}:
	default:
	}
}

// perform makes one attempt at a claimed action and records its settlement. It is
// never cancelled by shutdown halfway: an action that started finishes and records
// its outcome.
func (o *outbox) perform(it store.OutboxItem) {
	p := o.p
	ctx := context.Background()
	var d *dialog.Dialog
	var last time.Time
	var err error
	if it.DialogID != nil {
		d, last, err = o.dialogOf(ctx, *it.DialogID)
	}
	var s core.Settlement
	if err != nil {
		// The dialog or the contact's window could not be read: try again later.
		s = p.core.Settle(it, nil, connectors.Result{}, &connectors.Error{Code: connectors.CodeNetwork, Message: err.Error(), Retryable: true})
	} else {
		callCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		res, err := p.core.Perform(callCtx, it, d, last)
		cancel()
		s = p.core.Settle(it, d, res, err)
	}
	o.record(ctx, s)
}

// dialogOf returns an action's dialog (a dialog's flow, channel, contact and phone
// never change: any cached copy will do) and its contact's last inbound time.
func (o *outbox) dialogOf(ctx context.Context, id int64) (*dialog.Dialog, time.Time, error) {
	p := o.p
	row, ok := p.dialogs.get(id)
	if !ok {
		var err error
		if row, err = p.st.GetDialog(ctx, id); err != nil {
			return nil, time.Time{}, fmt.Errorf("load dialog: %w", err)
		}
	}
	var last time.Time
	if row.Channel != "" && row.ContactID != "" {
		var err error
		if last, err = p.lastInbound(ctx, row.Channel, row.ContactID, p.cfg.Now(), waba.Window); err != nil {
			return nil, time.Time{}, fmt.Errorf("load contact window: %w", err)
		}
	}
	return &row.Dialog, last, nil
}

// record commits a settlement through the writer, then logs and counts it. When
// the action's dialog allows it, its result is applied to the dialog in the same
// transaction (see inline).
func (o *outbox) record(ctx context.Context, s core.Settlement) {
	p := o.p
	it := s.Item
	log := p.log.With("action_id", it.ID, "kind", it.Kind, "attempt", it.Attempts)
	if it.DialogID != nil {
		log = log.With("dialog_id", *it.DialogID)
	}
	applied, err := o.inline(ctx, s)
	if errors.Is(err, errNoInline) {
		err = p.step(ctx, func(tx store.StepTx) error {
			_, err := s.Record(tx)
			return err
		})
	}
	if errors.Is(err, store.ErrConflict) {
		// No longer running under this claim: its lease ran out and another worker
		// claimed it again, which records its own outcome; nothing of this one is kept.
		log.Warn("outbox: outcome not recorded: another worker took the action over", "err", err)
		return
	}
	if err != nil {
		log.Error("outbox: record outcome", "err", err)
		return
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.Settled(s)
	}
	result := string(s.Status)
	switch s.Status {
	case store.OutboxDone:
		result = "done"
		if s.DryRun {
			result = "dry_run"
			log.Info("action dry-run (credentials unset)")
		} else {
			log.Info("action done")
		}
	case store.OutboxPending:
		result = "retry"
		log.Warn("action will be retried", "at", s.NextAt.UTC().Format(time.RFC3339), "code", s.Error.Code,
			"status", s.Error.Status, "err", s.Error.Error())
	case store.OutboxDead:
		log.Error("action dead: retries exhausted", "code", s.Error.Code, "status", s.Error.Status,
			"api_code", s.Error.APICode, "err", s.Error.Error())
	default:
		log.Warn("action failed", "code", s.Error.Code, "status", s.Error.Status, "api_code", s.Error.APICode, "err", s.Error.Error())
	}
	if p.met != nil && s.Connector != "" {
		p.met.OutboxAttempts.WithLabelValues(s.Connector, result).Inc()
	}
	switch {
	case applied != nil:
		p.stepper.observe(p.log.With("event_id", applied.Event.ID, "event_type", applied.Event.Type), applied)
	case s.Event != nil:
		p.Wake() // the result event waits in the inbox for the router
	case s.FilesOf != 0:
		// The message has its files (or their error): it and the events that waited
		// behind it go to their dialogs now.
		p.router.rescanSoon()
		p.Wake()
	}
}

// errNoInline means an action's result cannot be applied where it is recorded;
// nothing was written.
var errNoInline = errors.New("the result cannot be applied inline")

// inline records a settlement and, in the same transaction, applies its result
// event to the action's dialog, saving the event a read by the router, a turn in a
// lane and a step of its own. The dialog's order allows it only when nothing can
// come before the result: the dialog's lane is idle (and is held meanwhile), no
// event stored before it that the router has yet to hand out carries one of the
// dialog's keys, its address or a key the step binds (the writer's index of unread
// events, see unread), and, when the step binds keys, no event waits in a start
// lane (it might carry one of them). On SQLite only, where this process makes every
// change and the dialog is at hand in the cache. Should the step fail, nothing is
// written and the result goes the usual way.
func (o *outbox) inline(ctx context.Context, s core.Settlement) (*core.Applied, error) {
	p := o.p
	if s.Event == nil || p.dialogs == nil || p.w.unread == nil {
		return nil, errNoInline
	}
	id := *s.Item.DialogID
	if !p.lanes.occupy(id) {
		return nil, errNoInline
	}
	defer p.lanes.release(id)
	p.swap.RLock() // no reload moves the dialog between its read and the commit
	defer p.swap.RUnlock()
	// Read while the lane is held: no step of the dialog changes it meanwhile.
	d, gen, ok := p.dialogs.lookup(id)
	if !ok {
		return nil, errNoInline
	}
	var applied *core.Applied
	var stepErr error
	address := []string{unreadAddress(id)}
	err := p.step(ctx, func(tx store.StepTx) error {
		applied, stepErr = nil, nil
		ev, err := s.Record(tx)
		// The index first, the lane then: the router hands an event to the lane
		// before it takes it out of the index, so one of the two shows it.
		if err != nil || ev.Seq == 0 || p.w.unread.before(ev.Seq, d.Keys, address) || p.lanes.waiting(id) {
			return err // recorded; the result event goes the usual way
		}
		ev.ReceivedAt = p.cfg.Now()
		plan, err := p.core.Plan(ctx, ev, d)
		if err != nil {
			stepErr = err
			return err
		}
		// A step that binds keys waits for the start lanes and for the unread events
		// that carry them: such an event, earlier than the result, must not find
		// the dialog by a key bound after it.
		if len(plan.Result.Binds) > 0 && (!p.lanes.quiet() || p.w.unread.before(ev.Seq, plan.Result.Binds)) {
			return nil
		}
		applied, err = p.core.Apply(tx, plan)
		stepErr = err
		return err
	})
	if stepErr != nil {
		// The step, not the outcome, failed (a dialog changed behind the cache):
		// nothing was written.
		p.dialogs.drop(id)
		return nil, errNoInline
	}
	if err != nil || applied == nil {
		return nil, err
	}
	p.w.unread.remove(applied.Event.Seq) // settled: the router will not hand it out
	p.stepper.keep(applied, gen)
	if len(applied.Actions) > 0 {
		o.wake()
	}
	return applied, nil
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
