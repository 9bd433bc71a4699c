package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// DefaultOutboxWorkers is Config.OutboxWorkers' default: a call to a remote API
// mostly waits, and WhatsApp alone allows 80 messages a second per number.
const DefaultOutboxWorkers = 64

// Config configures a Processor. Zero values get the documented defaults.
type Config struct {
	Store    store.Store
	Flows    *engine.Holder
	Registry *connectors.Registry
	Metrics  *metrics.Metrics // may be nil
	Logger   *slog.Logger
	// Now is the clock (a fake one in tests). Default time.Now.
	Now func() time.Time
	// Lanes bounds how many dialogs are processed at once (default 64). On SQLite the
	// steps of the lanes at work share transactions, so this also bounds a batch.
	Lanes int
	// OutboxWorkers bounds concurrent outbound calls (default DefaultOutboxWorkers).
	OutboxWorkers int
	// Poll is how often stored work is looked for without a wake-up (default 500ms).
	Poll time.Duration
	// Rescan is how often the router reads the inbox from its start again, for events
	// left pending by a failed attempt (default 10s).
	Rescan time.Duration
	// MaxAttempts is how many times an action is tried before it is dead (default 8).
	MaxAttempts int
	// BackoffBase and BackoffMax bound the retry delay (defaults 2s and 10m): the
	// step base·2^(attempt-1), capped at max, with equal jitter (a random point in the
	// step's second half), and never shorter than the server's Retry-After.
	BackoffBase, BackoffMax time.Duration
	// Lease is how long a claimed action may run before another worker may take it
	// over (default 2m).
	Lease time.Duration
	// Jitter returns a random fraction in [0,1); default math/rand/v2.
	Jitter func() float64
	// FlowEnv is what expressions see as env (engine.FlowEnv(os.Environ())).
	FlowEnv map[string]any
}

// Processor routes and processes events, performs actions and fires timers.
type Processor struct {
	cfg   Config
	st    store.Store
	log   *slog.Logger
	met   *metrics.Metrics
	inbox *Inbox
	wake  chan struct{} // new events stored: the router looks
	work  chan struct{} // new actions stored: the outbox looks
	freed chan struct{} // an outbox worker finished: the outbox claims more

	slots   chan struct{}  // outbox workers at work
	actions sync.WaitGroup // claimed actions not yet performed
	busyMu  sync.Mutex
	busy    map[int64][]store.OutboxItem // dialog (or -action id) → actions waiting behind its running one

	machines sync.Pool // *engine.Machine: one per goroutine at a time

	versionsMu sync.Mutex
	versions   map[string]*engine.Flow // flow versions no longer in the current set

	lanesMu    sync.Mutex
	lanes      map[int64]*lane
	queuedSeqs map[int64]bool // events handed to a lane and not yet done
	inflight   sync.WaitGroup // events handed to lanes and not yet done
	starts     sync.WaitGroup // events handed to start lanes and not yet done
	laneSem    chan struct{}
	inflightN  atomic.Int64  // events handed to lanes and not yet done (the WaitGroup's count)
	gate       chan struct{} // the one lane that may work while the intake is under pressure

	// The router goroutine's own state.
	cursor    int64            // highest seq handed out
	rescanned time.Time        // when the inbox was last rescanned from the start
	run       map[string]int64 // keys of the current run of unclaimed events → start lane
	nextStart int64            // the last start lane id given out (negative)

	timersMu sync.Mutex
	queued   map[int64]bool // timers whose event is appended but not yet processed

	w *writer // where steps and inbox appends are committed

	dialogs *dialogCache // nil unless the store has a single writer
	windows *windowCache
}

// step runs fn in a transaction of its own, as Store.Step does; on SQLite it
// shares the transaction with other steps (see writer).
func (p *Processor) step(ctx context.Context, fn func(store.StepTx) error) error {
	return p.w.do(ctx, fn)
}

// New returns a Processor; Run starts it. Its Inbox is ready at once.
func New(cfg Config) *Processor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 64
	}
	if cfg.OutboxWorkers <= 0 {
		cfg.OutboxWorkers = DefaultOutboxWorkers
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 2 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 10 * time.Minute
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = connectors.NewRegistry()
	}
	p := &Processor{cfg: cfg, st: cfg.Store, log: cfg.Logger, met: cfg.Metrics,
		wake: make(chan struct{}, 1), work: make(chan struct{}, 1), freed: make(chan struct{}, 1),
		slots: make(chan struct{}, cfg.OutboxWorkers), busy: map[int64][]store.OutboxItem{}, versions: map[string]*engine.Flow{}, lanes: map[int64]*lane{}, queuedSeqs: map[int64]bool{},
		laneSem: make(chan struct{}, cfg.Lanes), gate: make(chan struct{}, 1), queued: map[int64]bool{}}
	p.machines.New = func() any { return engine.NewMachine().WithEnv(cfg.FlowEnv) }
	p.w = newWriter(cfg.Store, cfg.Metrics, cfg.Now)
	p.windows = newWindowCache()
	if cfg.Store != nil && cfg.Store.SingleWriter() {
		p.dialogs = newDialogCache()
	}
	p.inbox = newInbox(p.w.append, cfg.Metrics, cfg.Logger, p.Wake, 0)
	return p
}

// Inbox is where webhooks append events.
func (p *Processor) Inbox() *Inbox { return p.inbox }

// Wake tells the router that new events were stored.
func (p *Processor) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// wakeOutbox tells the outbox loop that actions were committed.
func (p *Processor) wakeOutbox() {
	select {
	case p.work <- struct{}{}:
	default:
	}
}

// SaveVersions stores the source of every flow of fs by content hash, so dialogs
// pinned to a version survive restarts and reloads.
func (p *Processor) SaveVersions(ctx context.Context, fs *engine.FlowSet) error {
	for _, f := range fs.Flows() {
		if err := p.st.SaveFlowVersion(ctx, store.FlowVersion{Hash: f.Hash, Flow: f.Name, File: f.File, Source: string(f.Source)}); err != nil {
			return fmt.Errorf("save flow version %s: %w", f.Name, err)
		}
	}
	return nil
}

// Run processes until ctx is cancelled, then finishes the work in hand (events in
// lanes, actions being performed) and returns.
func (p *Processor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.outboxLoop(ctx) }()
	go func() { defer wg.Done(); p.timerLoop(ctx) }()
	tick := time.NewTicker(p.cfg.Poll)
	defer tick.Stop()
	for {
		if err := p.RouteOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("router: read pending events", "err", err)
		}
		select {
		case <-ctx.Done():
			p.inflight.Wait()
			wg.Wait()
			return nil
		case <-p.wake:
		case <-tick.C:
		}
	}
}

// Drain waits until every event handed to a lane is processed.
func (p *Processor) Drain() { p.inflight.Wait() }

// RouteOnce reads the pending events after the router's cursor and hands each to
// its dialog's lane, starting dialogs where needed. It returns when all of them
// are handed out (not processed: see Drain).
func (p *Processor) RouteOnce(ctx context.Context) error {
	for ctx.Err() == nil {
		if p.inflightN.Load() >= maxInflight {
			return nil // woken again when the lanes are half way through
		}
		evs, err := p.st.PendingEvents(ctx, p.cursor, 256)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			if p.cursor > 0 && time.Since(p.rescanned) >= p.cfg.Rescan {
				// Nothing new: once per Rescan, read from the start again so that an event
				// left pending by a failed attempt is retried. Events already in a
				// lane are skipped (isQueued), so nothing waits for the lanes here.
				p.cursor, p.rescanned = 0, time.Now()
				continue
			}
			return nil
		}
		for i := range evs {
			p.route(ctx, evs[i])
			p.cursor = evs[i].Seq
		}
	}
	return ctx.Err()
}

// route hands one event to a lane.
//
// An event of a known dialog goes to that dialog's lane. An event no dialog claims
// is decided only after every earlier event is processed, since one of them may bind
// its keys: the router waits for the lanes once, at the first such event of a run,
// and hands the run's events to start lanes, one per contact (events sharing a key
// share a lane, so a contact's second message finds the dialog its first one
// started). Before the next event of a known dialog the router waits for the start
// lanes to finish, so that no event overtakes an earlier one of the same dialog.
func (p *Processor) route(ctx context.Context, ev store.Event) {
	if p.isQueued(ev.Seq) {
		return
	}
	id, err := p.dialogFor(ctx, &ev)
	if err != nil {
		p.log.Error("router: find dialog", "event_id", ev.ID, "err", err)
		return
	}
	if id == 0 && p.run == nil {
		p.inflight.Wait()
		if id, err = p.dialogFor(ctx, &ev); err != nil {
			p.log.Error("router: find dialog", "event_id", ev.ID, "err", err)
			return
		}
		if id == 0 {
			p.run = map[string]int64{}
		}
	}
	if id != 0 {
		if p.run != nil {
			p.starts.Wait()
			p.run = nil
		}
		p.submit(id, ev)
		return
	}
	p.submit(p.startLane(ev.Keys), ev)
}

// startLane returns the (negative) lane of a run's event that no dialog claims: the
// lane of an earlier event of the run that shares one of its keys, or a new one.
func (p *Processor) startLane(keys []string) int64 {
	var lane int64
	for _, k := range keys {
		if l, ok := p.run[k]; ok {
			lane = l
			break
		}
	}
	if lane == 0 {
		p.nextStart--
		lane = p.nextStart
		if len(keys) == 0 {
			lane = -1 << 62 // events without keys: one lane, in order
		}
	}
	for _, k := range keys {
		p.run[k] = lane
	}
	return lane
}

// dialogFor returns the dialog an event belongs to: named in its data (timers,
// action results) or bound to one of its keys; 0 when none.
func (p *Processor) dialogFor(ctx context.Context, ev *store.Event) (int64, error) {
	if ev.Source == event.SourceTimer || ev.Source == event.SourceAction {
		id, _ := strconv.ParseInt(fmt.Sprint(ev.Data["dialog_id"]), 10, 64)
		return id, nil
	}
	if len(ev.Keys) == 0 {
		return 0, nil
	}
	if id, ok := p.dialogs.route(ev.Keys); ok {
		return id, nil
	}
	d, err := p.st.FindDialogByKeys(ctx, ev.Keys)
	if err != nil || d == nil {
		return 0, err
	}
	return d.ID, nil
}

// Intake pressure and backlog bounds.
const (
	// pressure is the number of webhooks waiting for their inbox commit from which
	// processing yields: while so many wait, one lane works at a time. Acknowledging
	// deliveries fast matters more than working through the backlog a moment sooner
	// (Meta retries a slow webhook, and disables one that stays slow); processing
	// goes on, slower, and catches up when the burst ends.
	pressure = 48
	// maxInflight bounds the events the router holds in lanes; beyond it the router
	// stops reading the inbox until half of them are done, so a backlog stays in the
	// database, not in memory.
	maxInflight = 8192
)

// yield waits for the gate while the intake is under pressure and returns its
// release; otherwise it returns at once.
func (p *Processor) yield() (release func()) {
	if p.inbox.Waiting() < pressure {
		return func() {}
	}
	p.gate <- struct{}{}
	return func() { <-p.gate }
}

// lane is the queue of one dialog's events (id < 0: a start lane, of events that no
// dialog claimed when they were routed).
type lane struct {
	id    int64
	queue []store.Event
}

// isQueued reports whether an event is already handed to a lane, so that a rescan
// of the inbox does not hand it out twice.
func (p *Processor) isQueued(seq int64) bool {
	p.lanesMu.Lock()
	defer p.lanesMu.Unlock()
	return p.queuedSeqs[seq]
}

func (p *Processor) submit(id int64, ev store.Event) {
	p.inflight.Add(1)
	p.inflightN.Add(1)
	if id < 0 {
		p.starts.Add(1)
	}
	p.lanesMu.Lock()
	l, running := p.lanes[id]
	if !running {
		l = &lane{id: id}
		p.lanes[id] = l
	}
	l.queue = append(l.queue, ev)
	p.queuedSeqs[ev.Seq] = true
	p.lanesMu.Unlock()
	if !running {
		go p.runLane(l)
	}
}

func (p *Processor) runLane(l *lane) {
	p.laneSem <- struct{}{}
	defer func() { <-p.laneSem }()
	for {
		p.lanesMu.Lock()
		if len(l.queue) == 0 {
			delete(p.lanes, l.id)
			p.lanesMu.Unlock()
			return
		}
		ev := l.queue[0]
		p.lanesMu.Unlock()

		release := p.yield()
		p.process(l.id, ev)
		release()

		p.lanesMu.Lock()
		l.queue = l.queue[1:]
		delete(p.queuedSeqs, ev.Seq)
		p.lanesMu.Unlock()
		if l.id < 0 {
			p.starts.Done()
		}
		if p.inflightN.Add(-1) == maxInflight/2 {
			p.Wake() // the router stopped at maxInflight; there is room again
		}
		p.inflight.Done()
	}
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

// errEnded means the dialog ended before this event was processed.
var errEnded = errors.New("dialog has ended")

// process applies one event, retrying store conflicts and transient failures.
func (p *Processor) process(dialogID int64, ev store.Event) {
	ctx := context.Background()
	log := p.log.With("event_id", ev.ID, "event_type", ev.Type)
	outcome := "processed"
	var err error
	wait, waitUntil := 5*time.Millisecond, time.Now().Add(2*time.Minute)
	resolve := dialogID < 0 // a start lane: an earlier event of it may have started the dialog
	for attempt := 1; ; attempt++ {
		err = nil // each attempt starts afresh: an earlier attempt's error must not skip this one
		if resolve {
			if dialogID, err = p.dialogFor(ctx, &ev); err == nil {
				resolve = false
			}
		}
		switch {
		case err != nil:
		case dialogID == 0:
			outcome, err = p.start(ctx, ev)
		default:
			outcome, err = p.stepDialog(ctx, dialogID, ev)
			if errors.Is(err, errEnded) {
				// Its dialog ended meanwhile: the event may start a new one.
				p.dialogs.forgetKeys(ev.Keys)
				resolve = true
				continue
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, store.ErrSettled) {
			// Another worker (a rescan, another replica) claimed or processed it;
			// this attempt was rolled back whole. The lane waits until that event is
			// settled, so the dialog's next event cannot overtake it.
			// If the other worker dies, its claim goes with it and a retry here wins.
			if e, gerr := p.st.GetEvent(ctx, ev.Seq); gerr == nil && e.Status == store.EventPending && time.Now().Before(waitUntil) {
				log.Debug("event claimed elsewhere; waiting for it", "dialog_id", dialogID)
				time.Sleep(wait)
				wait = min(2*wait, 200*time.Millisecond)
				attempt-- // waiting for another worker is not a failed attempt
				continue
			}
			return
		}
		if attempt >= 5 {
			log.Error("process event: giving up", "dialog_id", dialogID, "attempts", attempt, "err", err)
			outcome = "failed"
			_ = p.step(ctx, func(tx store.StepTx) error {
				return tx.MarkEvent(ev.Seq, store.EventFailed, dialogRef(dialogID), err.Error())
			})
			break
		}
		if !errors.Is(err, store.ErrConflict) {
			// A lost revision race is retried at once, from a fresh read; other
			// failures (the database busy or away) back off.
			time.Sleep(time.Duration(attempt*attempt) * 20 * time.Millisecond)
		}
	}
	if p.met != nil {
		p.met.Processed.WithLabelValues(ev.Source, outcome).Inc()
		if !ev.ReceivedAt.IsZero() {
			p.met.ProcessingSeconds.WithLabelValues(ev.Source).Observe(time.Since(ev.ReceivedAt).Seconds())
		}
	}
}

func dialogRef(id int64) *int64 {
	if id <= 0 { // 0: no dialog; negative: a start lane's, unresolved
		return nil
	}
	return &id
}

func (p *Processor) machine() *engine.Machine { return p.machines.Get().(*engine.Machine) }

// start offers an event that no dialog claims to the flows.
func (p *Processor) start(ctx context.Context, ev store.Event) (string, error) {
	fs := p.cfg.Flows.Current()
	now := p.cfg.Now()
	m := p.machine()
	defer p.machines.Put(m)
	var flow *engine.Flow
	if fs != nil && ev.Source != event.SourceTimer && ev.Source != event.SourceAction {
		var errs []error
		flow, errs = m.StartFlow(fs, &ev.Event, now)
		for _, e := range errs {
			p.log.Warn("start guard failed", "event_id", ev.ID, "err", e)
		}
	}
	if flow == nil {
		err := p.step(ctx, func(tx store.StepTx) error {
			if err := p.claim(tx, ev.Seq); err != nil {
				return err
			}
			return tx.MarkEvent(ev.Seq, store.EventUnrouted, nil, "")
		})
		return "unrouted", err
	}
	outcome, actions := "processed", 0
	gen := p.dialogs.generation()
	var row *store.Dialog
	var bound []string
	err := p.step(ctx, func(tx store.StepTx) error {
		if err := p.claim(tx, ev.Seq); err != nil {
			return err
		}
		row = &store.Dialog{Flow: flow.Name, FlowHash: flow.Hash, State: flow.Initial, Status: store.DialogActive, Vars: map[string]any{},
			Channel: ev.Contact.Channel, ContactID: ev.Contact.ID, Phone: ev.Contact.Phone}
		if err := tx.CreateDialog(row); err != nil {
			return fmt.Errorf("create dialog: %w", err)
		}
		res := m.Start(flow, strconv.FormatInt(row.ID, 10), &ev.Event, now)
		if res.Err != nil {
			outcome = "failed"
		}
		actions = len(res.Effects)
		var aerr error
		bound, aerr = p.apply(tx, row, nil, res, ev, now)
		return aerr
	})
	if err == nil {
		p.dialogs.put(row, withBound(nil, row.ID, bound, now), gen)
		if actions > 0 {
			p.wakeOutbox()
		}
	}
	return outcome, err
}

// stepDialog applies an event to its dialog in one transaction.
//
// The dialog is read and the flow stepped before the transaction, so that the
// store's writer (on SQLite, the one connection every step queues for) only writes.
// That is safe because a dialog's events are stepped one at a time (its lane) and
// UpdateDialog writes only the revision it read: a change made in between (a
// reload moving live dialogs to a new version, another replica) makes the step fail
// with ErrConflict, and it is tried again from the read.
func (p *Processor) stepDialog(ctx context.Context, id int64, ev store.Event) (string, error) {
	row, keys, gen, err := p.loadDialog(ctx, id)
	if err != nil {
		return "", err
	}
	if row.Status.Ended() && ev.Source != event.SourceAction && ev.Source != event.SourceTimer {
		return "", errEnded
	}
	now := p.cfg.Now()
	flow, loadErr := p.flowVersion(ctx, row.Flow, row.FlowHash)
	var res engine.Result
	if loadErr == nil {
		m := p.machine()
		res = m.Step(flow, toEngine(row, keys), &ev.Event, now)
		p.machines.Put(m)
	}
	outcome := "processed"
	var bound []string
	read := *row
	err = p.step(ctx, func(tx store.StepTx) error {
		*row = read // a rolled-back run (see Store.Steps) must not leave its changes to the next
		if err := p.claim(tx, ev.Seq); err != nil {
			return err
		}
		if loadErr != nil {
			outcome = "failed"
			_ = tx.AppendHistory(store.HistoryEntry{DialogID: id, At: now, Kind: store.HistoryError, EventSeq: &ev.Seq,
				Detail: mustJSON(map[string]any{"error": loadErr.Error()})})
			return tx.MarkEvent(ev.Seq, store.EventFailed, &id, loadErr.Error())
		}
		if ev.Type == event.TypeTimer {
			tid, _ := strconv.ParseInt(fmt.Sprint(ev.Data["timer_id"]), 10, 64)
			fired, err := tx.FireTimer(tid)
			if err != nil {
				return fmt.Errorf("fire timer %d: %w", tid, err)
			}
			p.unqueueTimer(tid)
			if !fired {
				_ = tx.AppendHistory(store.HistoryEntry{DialogID: id, At: now, Kind: store.HistoryTimer, EventSeq: &ev.Seq,
					Detail: mustJSON(map[string]any{"timer": ev.Data["timer"], "ignored": "cancelled before it fired"})})
				return tx.MarkEvent(ev.Seq, store.EventProcessed, &id, "")
			}
		}
		if res.Err != nil {
			outcome = "failed"
		}
		var aerr error
		bound, aerr = p.apply(tx, row, keys, res, ev, now)
		return aerr
	})
	if err != nil {
		p.dialogs.drop(id)
		return outcome, err
	}
	p.dialogs.put(row, withBound(keys, id, bound, now), gen)
	if len(res.Effects) > 0 && outcome == "processed" {
		p.wakeOutbox()
	}
	return outcome, nil
}

// apply writes a step's result: dialog, keys, timers, outbox, history, event status.
// keys are the dialog's active keys before the step; it returns the keys it bound.
func (p *Processor) apply(tx store.StepTx, row *store.Dialog, keys []store.DialogKey, res engine.Result, ev store.Event,
	now time.Time) ([]string, error) {
	id := row.ID
	hist := make([]store.HistoryEntry, 0, len(res.History)+1)
	for _, h := range res.History {
		var detail json.RawMessage
		if len(h.Detail) > 0 {
			detail = mustJSON(h.Detail)
		}
		hist = append(hist, store.HistoryEntry{DialogID: id, At: now, Kind: store.HistoryKind(h.Kind), EventSeq: &ev.Seq,
			FromState: h.From, ToState: h.To, Detail: detail})
	}
	if res.Err != nil {
		// The dialog is unchanged; the history says why, the event is failed.
		if err := tx.AppendHistory(hist...); err != nil {
			return nil, fmt.Errorf("append history: %w", err)
		}
		if row.Revision == 1 && row.LastEventID == 0 {
			// A dialog that failed on its very first step does not live on.
			row.Status = store.DialogFailed
			if err := tx.UpdateDialog(row); err != nil {
				return nil, fmt.Errorf("update dialog: %w", err)
			}
		}
		return nil, tx.MarkEvent(ev.Seq, store.EventFailed, &id, res.Err.Error())
	}
	d := res.Dialog
	row.State, row.Status, row.Vars = d.State, store.DialogStatus(d.Status), d.Vars
	row.HandoffUntil, row.EnteredAt = d.HandoffUntil, d.EnteredAt
	row.LastEventID = ev.Seq
	var bound []string
	for _, k := range res.Binds {
		if holds(keys, k) || slices.Contains(bound, k) {
			continue // bound already: nothing to write
		}
		if err := tx.BindKey(id, k); err != nil {
			if !errors.Is(err, store.ErrKeyTaken) {
				return nil, fmt.Errorf("bind %s: %w", k, err)
			}
			hist = append(hist, store.HistoryEntry{DialogID: id, At: now, Kind: store.HistoryError, EventSeq: &ev.Seq,
				Detail: mustJSON(map[string]any{"error": "key " + k + " is bound to another live dialog; not bound here"})})
			continue
		}
		bound = append(bound, k)
	}
	seen := map[string]bool{}
	for _, s := range res.CancelStates {
		if !seen[s] {
			seen[s] = true
			if _, err := tx.CancelTimers(id, s); err != nil {
				return nil, fmt.Errorf("cancel timers: %w", err)
			}
		}
	}
	for _, t := range res.Timers {
		if t.State != d.State {
			continue // the step left that state again
		}
		if err := tx.ScheduleTimer(&store.Timer{DialogID: id, State: t.State, Name: t.Name, DueAt: t.Due}); err != nil {
			return nil, fmt.Errorf("schedule timer: %w", err)
		}
	}
	for _, e := range res.Effects {
		params, err := json.Marshal(e.Params)
		if err != nil {
			return nil, fmt.Errorf("encode %s parameters: %w", e.Kind, err)
		}
		if err := tx.Enqueue(&store.OutboxItem{DialogID: &id, Kind: e.Kind, Params: params, NextAt: now}); err != nil {
			return nil, fmt.Errorf("enqueue %s: %w", e.Kind, err)
		}
	}
	if err := tx.UpdateDialog(row); err != nil {
		return nil, fmt.Errorf("update dialog: %w", err)
	}
	if err := tx.AppendHistory(hist...); err != nil {
		return nil, fmt.Errorf("append history: %w", err)
	}
	status := store.EventProcessed
	errText := ""
	if !res.Handled {
		errText = "unhandled in state " + d.State
	}
	return bound, tx.MarkEvent(ev.Seq, status, &id, errText)
}

// holds reports whether key is among a dialog's active keys.
func holds(keys []store.DialogKey, key string) bool {
	for _, k := range keys {
		if k.Active && k.Key == key {
			return true
		}
	}
	return false
}

func toEngine(row *store.Dialog, keys []store.DialogKey) engine.Dialog {
	d := engine.Dialog{ID: strconv.FormatInt(row.ID, 10), Flow: row.Flow, FlowHash: row.FlowHash, State: row.State,
		Status: string(row.Status), Vars: row.Vars, Channel: row.Channel, Contact: row.ContactID, Phone: row.Phone,
		HandoffUntil: row.HandoffUntil, StartedAt: row.CreatedAt, EnteredAt: row.EnteredAt}
	for _, k := range keys {
		if k.Active {
			d.Keys = append(d.Keys, k.Key)
		}
	}
	if d.Vars == nil {
		d.Vars = map[string]any{}
	}
	return d
}

// knownVersion returns a flow version held in memory (the current set or an older
// version loaded before), or nil; it never reads the store.
func (p *Processor) knownVersion(name, hash string) *engine.Flow {
	if fs := p.cfg.Flows.Current(); fs != nil {
		if f := fs.ByHash(hash); f != nil && f.Name == name {
			return f
		}
	}
	p.versionsMu.Lock()
	defer p.versionsMu.Unlock()
	return p.versions[hash]
}

// flowVersion returns the flow version a dialog is pinned to: from the current
// set, else compiled from the stored source.
func (p *Processor) flowVersion(ctx context.Context, name, hash string) (*engine.Flow, error) {
	if f := p.knownVersion(name, hash); f != nil {
		return f, nil
	}
	// No lock is held across the store read: a step transaction (which holds
	// SQLite's only connection) takes versionsMu in knownVersion.
	v, err := p.st.GetFlowVersion(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("flow %s version %.12s: %w", name, hash, err)
	}
	fs, diags := engine.Compile([]engine.File{{Name: v.File, Data: []byte(v.Source)}})
	if fs == nil || fs.Flow(name) == nil {
		return nil, fmt.Errorf("flow %s version %.12s no longer compiles: %v", name, hash, diags)
	}
	p.versionsMu.Lock()
	defer p.versionsMu.Unlock()
	if f := p.versions[hash]; f != nil { // another lane loaded it meanwhile
		return f, nil
	}
	f := fs.Flow(name)
	p.versions[hash] = f
	return f, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"unencodable": err.Error()})
	}
	return b
}
