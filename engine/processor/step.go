package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// stepper processes one event of a lane: it plans the step with the core outside
// the transaction (so that on SQLite the writer's one connection only writes),
// applies it through the writer and keeps the dialog cache up to date.
type stepper struct{ p *Processor }

// Retry bounds of one event.
const (
	maxFailures = 5               // failed attempts before the event is marked failed
	maxWaitElse = 2 * time.Minute // how long to wait for another worker's claim of the event
)

// process applies one event, retrying lost revision races and transient failures,
// and waiting for another worker that has claimed it. lane is the dialog's id, or
// a start lane's (negative) when no dialog held the event's keys when it was routed.
func (s *stepper) process(lane int64, ev store.Event) {
	p := s.p
	target := lane // negative: find the dialog by the event's keys (an earlier event may have started it)
	s.attempt(ev, lane, func(ctx context.Context) ([]*core.Applied, int64, error) {
		applied, err := s.once(ctx, target, ev)
		if errors.Is(err, core.ErrEnded) {
			// Its dialog ended meanwhile: the event may start a new one.
			p.dialogs.forgetKeys(ev.Keys)
			target = -1
			return nil, 0, errAgain
		}
		return []*core.Applied{applied}, max(target, 0), err
	})
}

// processFan applies an event that may go to several dialogs (see
// core.Core.FansOut) in one step, as process does with one.
func (s *stepper) processFan(ev store.Event) {
	s.attempt(ev, 0, func(ctx context.Context) ([]*core.Applied, int64, error) {
		applied, err := s.fanOnce(ctx, ev)
		return applied, 0, err
	})
}

// errAgain asks attempt to try again at once, without counting a failure.
var errAgain = errors.New("try again")

// attempt runs try until it succeeds, retrying lost revision races and transient
// failures and waiting for another worker that has claimed the event; after
// maxFailures it records the event as failed (for the dialog try names).
func (s *stepper) attempt(ev store.Event, lane int64, try func(context.Context) ([]*core.Applied, int64, error)) {
	p := s.p
	ctx := context.Background()
	log := p.log.With("event_id", ev.ID, "event_type", ev.Type)
	wait, deadline := 5*time.Millisecond, time.Now().Add(maxWaitElse)
	failures := 0
	if t, ok := event.TimerOf(&ev.Event); ok {
		// However the event ends (applied, failed, settled elsewhere), the scheduler
		// may look at its timer again: still pending, it is appended again, which the
		// dedupe key makes the same event; fired, it is no longer due.
		defer p.timers.unqueue(t.ID)
	}
	for {
		applied, dialogID, err := try(ctx)

		switch {
		case err == nil:
			for i, a := range applied {
				s.observeOne(log, a, i == 0)
			}
			if event.HasFetch(&ev.Event) {
				// Events of the contact's that waited behind this one go on now.
				p.router.rescanSoon()
				p.Wake()
			}
			return
		case errors.Is(err, core.ErrWait):
			// Its files, or an earlier message's, are being fetched: it stays pending
			// and is offered again when the fetch is settled (outbox.record).
			log.Debug("event waits for the files of a message", "lane", lane)
			return
		case errors.Is(err, errAgain):
		case errors.Is(err, store.ErrSettled):
			// Another worker (a rescan, another replica) claimed or processed it; this
			// attempt was rolled back whole. The lane waits until that event is settled,
			// so the dialog's next event cannot overtake it. If the other worker dies,
			// its claim goes with it and a retry here wins.
			e, gerr := p.st.GetEvent(ctx, ev.Seq)
			if gerr != nil || e.Status != store.EventPending || time.Now().After(deadline) {
				return
			}
			log.Debug("event claimed elsewhere; waiting for it", "lane", lane)
			time.Sleep(wait)
			wait = min(2*wait, 200*time.Millisecond)
		case failures+1 < maxFailures:
			failures++
			if !errors.Is(err, store.ErrConflict) {
				// A lost revision race is tried again at once, from a fresh read; other
				// failures (the database busy or away) back off.
				time.Sleep(time.Duration(failures*failures) * 20 * time.Millisecond)
			}
		default:
			log.Error("process event: giving up", "dialog_id", dialogID, "attempts", failures+1, "err", p.logText(err, &ev))
			if merr := p.step(ctx, func(tx store.StepTx) error { return p.core.Failed(tx, ev, dialogID, err) }); merr != nil {
				// Nothing is recorded: the event stays pending for a rescan, and whoever
				// waits for it (a control) hears of it only once it is settled.
				log.Error("process event: record the failure", "err", merr)
				p.router.rescanSoon()
				return
			}
			s.observe(log, &core.Applied{Event: ev, Outcome: engine.Failed, Err: err})
			if event.HasFetch(&ev.Event) {
				// Settled, if failed: the contact's events that waited behind it go on.
				p.router.rescanSoon()
				p.Wake()
			}
			return
		}
	}
}

// fanOnce makes one attempt at an event that may go to several dialogs.
func (s *stepper) fanOnce(ctx context.Context, ev store.Event) ([]*core.Applied, error) {
	p := s.p
	p.swap.RLock() // no reload moves a dialog between its read and the commit
	defer p.swap.RUnlock()
	gen := p.dialogs.generation()
	load := func(ctx context.Context, id int64) (*store.Dialog, error) {
		d, _, err := p.loadDialog(ctx, id)
		return d, err
	}
	fan, err := p.core.PlanFan(ctx, p.core.Reader(), load, ev)
	if err != nil {
		return nil, err
	}
	var applied []*core.Applied
	err = p.step(ctx, func(tx store.StepTx) error {
		if err := p.claim(tx, ev.Seq); err != nil {
			return err
		}
		var err error
		applied, err = p.core.ApplyFan(tx, fan)
		return err
	})
	if err != nil {
		for _, pl := range fan.Plans {
			if pl.Dialog != nil {
				p.dialogs.drop(pl.Dialog.ID)
			}
		}
		return nil, err
	}
	wake := false
	for _, a := range applied {
		s.keep(a, gen)
		wake = wake || len(a.Actions) > 0
	}
	if wake {
		p.outbox.wake()
	}
	return applied, nil
}

// keep puts the dialog of an applied step in the cache. An alongside flow's
// dialog is dropped instead: the cache's keys are the ordinary scope's.
func (s *stepper) keep(a *core.Applied, gen uint64) {
	if a.Dialog == nil {
		return
	}
	if a.Scope != "" {
		s.p.dialogs.drop(a.Dialog.ID)
		return
	}
	s.p.dialogs.put(a.Dialog, gen)
}

// once makes one attempt at an event for the dialog target (0: none holds it;
// negative: find it by the event's keys).
func (s *stepper) once(ctx context.Context, target int64, ev store.Event) (*core.Applied, error) {
	p := s.p
	p.swap.RLock()
	defer p.swap.RUnlock()
	if target < 0 {
		// The router found no dialog for it: that holds unless one of its keys was
		// bound since (an earlier event of the lane started a dialog, say).
		if mark, ok := p.misses.LoadAndDelete(ev.Seq); ok && !p.w.binds.since(mark.(uint64), ev.Keys) {
			target = 0
		} else {
			var err error
			if target, err = p.core.Route(ctx, p.core.Reader(), &ev); err != nil {
				return nil, err
			}
		}
	}
	var d *store.Dialog
	var gen uint64
	if target != 0 {
		var err error
		if d, gen, err = p.loadDialog(ctx, target); errors.Is(err, store.ErrNotFound) {
			d, gen = nil, p.dialogs.generation() // an event addressed to a dialog that is gone: unrouted
		} else if err != nil {
			return nil, err
		}
	} else {
		gen = p.dialogs.generation()
	}
	plan, err := p.core.Plan(ctx, ev, d)
	if err != nil {
		return nil, err
	}
	var applied *core.Applied
	err = p.step(ctx, func(tx store.StepTx) error {
		if err := p.claim(tx, ev.Seq); err != nil {
			return err
		}
		var err error
		applied, err = p.core.Apply(tx, plan)
		return err
	})
	if err != nil {
		if target != 0 {
			p.dialogs.drop(target)
		}
		return nil, err
	}
	s.keep(applied, gen)
	if len(applied.Actions) > 0 {
		p.outbox.wake()
	}
	if applied.Raised > 0 {
		p.router.wake() // a failed delivery's event waits in the inbox
	}
	return applied, nil
}

// observe counts an event's outcome, once it is committed, tells whoever waits for
// it (Observer, a control's caller), and tells its story in the log: one line per
// event (at info; a failure at warn), and the flow's own `log` actions at their
// level. Customer text is left out unless Config.LogContent is set.
func (s *stepper) observe(log *slog.Logger, a *core.Applied) { s.observeOne(log, a, true) }

// observeOne is observe for one of the dialogs an event went to; count is false
// for all but the first, so that the metrics count the event once.
func (s *stepper) observeOne(log *slog.Logger, a *core.Applied, count bool) {
	p := s.p
	if p.cfg.Observer != nil {
		p.cfg.Observer.Stepped(a)
	}
	if ch, ok := p.waits.LoadAndDelete(a.Event.DedupeKey); ok {
		ch.(chan *core.Applied) <- a
	}
	ev := a.Event
	if p.met != nil && count {
		p.met.Processed.WithLabelValues(ev.Source, metricOutcome(a.Outcome)).Inc()
		if !ev.ReceivedAt.IsZero() {
			p.met.ProcessingSeconds.WithLabelValues(ev.Source).Observe(time.Since(ev.ReceivedAt).Seconds())
		}
	}
	if a.Outcome == engine.Unrouted {
		reason := "no live dialog holds its keys and no flow starts on " + ev.Type
		switch {
		case event.Addressed(&ev.Event):
			reason = "the dialog it is addressed to does not exist"
		case a.Unrouted != "":
			reason = a.Unrouted
		}
		log.Info("event unrouted", append([]any{"source", ev.Source, "reason", reason}, p.notes(a)...)...)
		return
	}
	if a.Dialog == nil { // given up before a dialog was known
		log.Warn("event failed", "err", p.logText(a.Err, &ev))
		return
	}
	log = log.With("dialog_id", a.Dialog.ID, "flow", a.Flow)
	for _, h := range a.Result.History {
		if h.Kind == dialog.HistLog {
			level := slog.LevelInfo
			if lv, ok := h.Detail["level"].(string); ok {
				_ = level.UnmarshalText([]byte(lv))
			}
			log.Log(context.Background(), level, fmt.Sprint(h.Detail["message"]), "by", "flow", "state", a.Dialog.State)
		}
	}
	if a.Outcome == engine.Failed {
		log.Warn("event failed", "state", a.From, "err", p.logText(a.Err, &ev))
		return
	}
	attrs := []any{"source", ev.Source, "from", a.From, "to", a.Dialog.State, "status", string(a.Dialog.Status),
		"outcome", string(a.Outcome)}
	if a.Started {
		attrs = append(attrs, "started", true)
	}
	if len(a.Actions) > 0 {
		kinds := make([]string, len(a.Actions))
		for i, it := range a.Actions {
			kinds[i] = it.Kind
		}
		attrs = append(attrs, "actions", kinds)
	}
	if p.cfg.LogContent && ev.Text != "" {
		attrs = append(attrs, "text", ev.Text)
	}
	log.Info("event processed", append(attrs, p.notes(a)...)...)
}

// notes are a step's notes as log attributes (none when it has none).
func (p *Processor) notes(a *core.Applied) []any {
	if len(a.Notes) == 0 {
		return nil
	}
	ns := make([]string, len(a.Notes))
	for i, n := range a.Notes {
		ns[i] = n
		if !p.cfg.LogContent {
			ns[i] = core.Redact(n, &a.Event.Event)
		}
	}
	return []any{"notes", ns}
}

// logText is an error as the logs show it: without the customer's content of ev
// unless Config.LogContent is set.
func (p *Processor) logText(err error, ev *store.Event) string {
	if err == nil {
		return ""
	}
	if p.cfg.LogContent {
		return err.Error()
	}
	return core.Redact(err.Error(), &ev.Event)
}

// metricOutcome is the outcome label of fixit_events_processed_total: processed,
// unrouted or failed.
func metricOutcome(o engine.Outcome) string {
	switch o {
	case engine.Unrouted, engine.Failed:
		return string(o)
	}
	return "processed"
}

// claim claims the event for this step (FOR UPDATE SKIP LOCKED on PostgreSQL): an
// event another replica is processing, or has processed, is skipped at once. With a
// single writer (SQLite) no one else can be processing it, and an event settled
// meanwhile (a rescan's second try) is caught by MarkEvent at the end of the step,
// which rolls it back: the read is saved.
func (p *Processor) claim(tx store.StepTx, seq int64) error {
	if p.st.SingleWriter() {
		return nil
	}
	ok, err := tx.ClaimEvent(seq)
	if err != nil {
		return err
	}
	if !ok {
		return store.ErrSettled
	}
	return nil
}

// loadDialog returns a dialog with its active keys, from the cache when it has it,
// else from the store, and the cache's generation before the read (for put).
func (p *Processor) loadDialog(ctx context.Context, id int64) (*store.Dialog, uint64, error) {
	row, gen, ok := p.dialogs.lookup(id)
	if ok {
		return row, gen, nil
	}
	row, err := p.st.LoadDialog(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("read dialog %d: %w", id, err)
	}
	return row, gen, nil
}
