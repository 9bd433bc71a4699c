package processor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
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
	// BusinessNumbers are the WhatsApp numbers served (core.Config.BusinessNumbers).
	BusinessNumbers []string
	// LogContent puts customers' text in the info log line of each processed event
	// and leaves it in the errors and notes logged (FIXIT_LOG_CONTENT); off, the log
	// tells what happened without what was said (core.Redact).
	LogContent bool
	// Observer, when set, hears of every step and every settled action after its
	// commit (the admin API's live stream; tests).
	Observer Observer
	// Exclusive says that this processor is the only one writing to its store:
	// fixit serve holds the SQLite database's lock (store.Lock). On a single-writer
	// store it then trusts what it remembers of its own writes to save reads and
	// turns: an action's result is applied where it is recorded when no event of
	// its dialog that the router has yet to hand out comes first (outbox.inline),
	// and a start lane trusts the router's finding that no dialog holds an event's
	// keys unless one of them was bound since. Leave it false when processors share
	// a SQLite database (tests do, to play replicas).
	Exclusive bool
}

// Observer hears what the processor did, after the commit. Calls come from many
// goroutines at once and must return quickly.
type Observer interface {
	// Stepped is called once an event's step is committed (also when it was unrouted
	// or failed).
	Stepped(*core.Applied)
	// Settled is called once an action's attempt is recorded.
	Settled(core.Settlement)
	// Reloaded is called after each reload (not after a dry run).
	Reloaded(engine.ReloadReport)
}

// Processor routes and processes events, performs actions and fires timers: the
// processing rules of engine/core, run concurrently and durably.
type Processor struct {
	cfg  Config
	st   store.Store
	log  *slog.Logger
	met  *metrics.Metrics
	core *core.Core

	w       *writer
	inbox   *Inbox
	dialogs *dialogCache // nil unless the store has a single writer
	windows *windowCache
	router  *router
	lanes   *lanes
	stepper *stepper
	outbox  *outbox
	timers  *timers

	reloadMu sync.Mutex // one reload at a time
	// swap is held (read) by each step from the read of its dialog to its commit,
	// and (write) by a reload while it moves dialogs and swaps the flow set.
	swap  sync.RWMutex
	waits sync.Map // an operator's control event's dedupe key → chan *core.Applied (Control)
	// misses are the events the router found no dialog for and handed to a start
	// lane: seq → the bind log's mark taken before the look-up.
	misses sync.Map
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
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Processor{cfg: cfg, st: cfg.Store, log: cfg.Logger, met: cfg.Metrics}
	p.w = newWriter(cfg.Store, cfg.Metrics, cfg.Now, cfg.Exclusive)
	p.windows = newWindowCache()
	if cfg.Store != nil && cfg.Store.SingleWriter() {
		p.dialogs = newDialogCache()
	}
	p.core = core.New(core.Config{Flows: cfg.Flows, Reader: cachedReader{st: cfg.Store, dialogs: p.dialogs, files: p.w.files},
		Registry: cfg.Registry, Now: cfg.Now, Env: cfg.FlowEnv, Logger: cfg.Logger, LogContent: cfg.LogContent, MaxAttempts: cfg.MaxAttempts,
		BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax, Jitter: cfg.Jitter, BusinessNumbers: cfg.BusinessNumbers})
	p.timers = &timers{p: p, queued: map[int64]bool{}}
	p.outbox = newOutbox(p, cfg.OutboxWorkers)
	p.stepper = &stepper{p: p}
	p.lanes = newLanes(cfg.Lanes, p.stepper.process, p.Wake)
	p.router = &router{p: p, wakeCh: make(chan struct{}, 1)}
	p.inbox = newInbox(p.w.append, cfg.Metrics, cfg.Logger, p.Wake, 0)
	p.inbox.committed = p.noteInbound
	p.lanes.pressure = p.inbox.Waiting
	return p
}

// Core is the processing rules the processor runs.
func (p *Processor) Core() *core.Core { return p.core }

// Inbox is where webhooks append events.
func (p *Processor) Inbox() *Inbox { return p.inbox }

// Wake tells the router that new events were stored.
func (p *Processor) Wake() { p.router.wake() }

// step runs fn in a transaction of its own, as Store.Step does; on SQLite it
// shares the transaction with other steps (see writer).
func (p *Processor) step(ctx context.Context, fn func(store.StepTx) error) error {
	return p.w.do(ctx, fn)
}

// Run processes until ctx is cancelled, then finishes the work in hand (events in
// lanes, actions being performed) and returns.
func (p *Processor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.outbox.loop(ctx) }()
	go func() { defer wg.Done(); p.timers.loop(ctx) }()
	p.router.loop(ctx)
	p.lanes.wait()
	wg.Wait()
	return nil
}

// RouteOnce reads the pending events after the router's cursor and hands each to
// its dialog's lane, starting dialogs where needed. It returns when all of them
// are handed out (not processed: see Drain).
func (p *Processor) RouteOnce(ctx context.Context) error { return p.router.once(ctx) }

// Drain waits until every event handed to a lane is processed.
func (p *Processor) Drain() { p.lanes.wait() }

// RunOutbox claims the due actions, performs them, waits for them and returns how
// many it performed.
func (p *Processor) RunOutbox(ctx context.Context) (int, error) { return p.outbox.runOnce(ctx) }

// FireTimers turns the timers due now into timer events in the inbox and returns
// how many it appended.
func (p *Processor) FireTimers(ctx context.Context) (int, error) { return p.timers.fire(ctx) }

// Backoff is the delay before attempt+1 of an action: the core's rule
// (core.Core.Backoff) with Config's BackoffBase, BackoffMax and Jitter.
func (p *Processor) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	return p.core.Backoff(attempt, retryAfter)
}

// cachedReader is the store as the core reads it, with the dialog cache's key map
// in front (a known contact's events are routed without a read) and, for an
// exclusive processor, the keys of the events with files (fileKeys).
type cachedReader struct {
	st      store.Store
	dialogs *dialogCache
	files   *fileKeys
}

func (r cachedReader) RouteKeys(ctx context.Context, keys []string) (*store.DialogRoute, error) {
	if d, ok := r.dialogs.route(keys); ok {
		return d, nil
	}
	return r.st.RouteKeys(ctx, keys)
}

func (r cachedReader) FindScopedDialogs(ctx context.Context, keys []string) ([]store.ScopedDialog, error) {
	return r.st.FindScopedDialogs(ctx, keys)
}

func (r cachedReader) EventDeliveries(ctx context.Context, seq int64) ([]store.EventDelivery, error) {
	return r.st.EventDeliveries(ctx, seq)
}

func (r cachedReader) AwaitingFiles(ctx context.Context, before int64, keys []string) (bool, error) {
	if r.files != nil {
		may, err := r.files.may(keys, func() ([]string, error) { return r.st.AwaitingFileKeys(ctx) })
		if err != nil || !may {
			return may, err
		}
	}
	return r.st.AwaitingFiles(ctx, before, keys)
}

func (r cachedReader) GetFlowVersion(ctx context.Context, hash string) (*store.FlowVersion, error) {
	return r.st.GetFlowVersion(ctx, hash)
}
