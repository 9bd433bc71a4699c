package core

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Flows serves the flow set in service and the loader that compiled it (an
// *engine.Holder): older versions that live dialogs keep are compiled with it.
type Flows interface {
	Current() *engine.FlowSet
	Loader() *engine.Loader
}

// Reader is what the core reads outside a step's transaction: the dialog bound to
// an event's keys (in the ordinary scope, and in the alongside flows'), an event's
// earlier deliveries, and the stored versions of flows no longer in service. A
// store.Store is one; the processor puts its caches in front of it.
type Reader interface {
	RouteKeys(ctx context.Context, keys []string) (*store.DialogRoute, error)
	FindScopedDialogs(ctx context.Context, keys []string) ([]store.ScopedDialog, error)
	EventDeliveries(ctx context.Context, seq int64) ([]store.EventDelivery, error)
	AwaitingFiles(ctx context.Context, before int64, keys []string) (bool, error)
	GetFlowVersion(ctx context.Context, hash string) (*store.FlowVersion, error)
}

// Config configures a Core. Zero values get the documented defaults.
type Config struct {
	Flows    Flows
	Reader   Reader
	Registry *connectors.Registry // performs actions (default: an empty registry)
	Now      func() time.Time     // the clock (default time.Now)
	Env      map[string]any       // what expressions see as env (engine.FlowEnv)
	Logger   *slog.Logger
	// LogContent lets customers' text into the core's log lines (errors that quote
	// it); off, it is taken out (see Redact).
	LogContent bool
	// MaxAttempts is how many times an action is tried before it is dead (default 8).
	MaxAttempts int
	// BackoffBase and BackoffMax bound the retry delay (defaults 2s and 10m); see Backoff.
	BackoffBase, BackoffMax time.Duration
	// Jitter returns a random fraction in [0,1) (default math/rand/v2).
	Jitter func() float64
	// BusinessNumbers are the WhatsApp business numbers (phone_number_ids) fixit
	// serves: a WhatsApp event about another one is stored but not routed. Empty:
	// every number is served (a dry run, the test world).
	BusinessNumbers []string
}

// Core applies the processing rules. It is safe for concurrent use: each call gets
// an interpreter of its own.
type Core struct {
	cfg      Config
	log      *slog.Logger
	machines sync.Pool // *engine.Machine: one per call at a time

	versionsMu sync.Mutex
	versions   map[string]*engine.Flow // flow versions no longer in the current set
}

// New returns a Core for cfg.
func New(cfg Config) *Core {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = connectors.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
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
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	c := &Core{cfg: cfg, log: cfg.Logger, versions: map[string]*engine.Flow{}}
	c.machines.New = func() any { return engine.NewMachine().WithEnv(cfg.Env) }
	return c
}

// Now is the core's clock.
func (c *Core) Now() time.Time { return c.cfg.Now() }

// Flows is the flow set in service (nil before the first load).
func (c *Core) Flows() *engine.FlowSet { return c.cfg.Flows.Current() }

// Registry performs the actions.
func (c *Core) Registry() *connectors.Registry { return c.cfg.Registry }

func (c *Core) machine() *engine.Machine { return c.machines.Get().(*engine.Machine) }

// knownVersion returns a flow version held in memory (the current set or an older
// version loaded before), or nil; it never reads the store.
func (c *Core) knownVersion(name, hash string) *engine.Flow {
	if fs := c.cfg.Flows.Current(); fs != nil {
		if f := fs.ByHash(hash); f != nil && f.Name == name {
			return f
		}
	}
	c.versionsMu.Lock()
	defer c.versionsMu.Unlock()
	return c.versions[hash]
}

// Version returns the flow version a dialog is pinned to: from the current set,
// else compiled from its stored source (and kept).
func (c *Core) Version(ctx context.Context, name, hash string) (*engine.Flow, error) {
	if f := c.knownVersion(name, hash); f != nil {
		return f, nil
	}
	// No lock is held across the store read: on SQLite a step transaction holds the
	// only connection and may itself ask for a version.
	v, err := c.cfg.Reader.GetFlowVersion(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("flow %s version %.12s: %w", name, hash, err)
	}
	fs, diags := c.cfg.Flows.Loader().Compile([]engine.File{{Name: v.File, Data: []byte(v.Source)}})
	if fs == nil || fs.Flow(name) == nil {
		return nil, fmt.Errorf("flow %s version %.12s no longer compiles: %v", name, hash, diags)
	}
	c.versionsMu.Lock()
	defer c.versionsMu.Unlock()
	if f := c.versions[hash]; f != nil { // another caller compiled it meanwhile
		return f, nil
	}
	f := fs.Flow(name)
	c.versions[hash] = f
	return f, nil
}

// Backoff is the delay before attempt+1 of an action: the step
// BackoffBase·2^(attempt-1), capped at BackoffMax, with equal jitter (uniform in
// [step/2, step)), and never shorter than the server's Retry-After.
func (c *Core) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	exp := float64(c.cfg.BackoffBase) * math.Pow(2, float64(max(attempt-1, 0)))
	exp = min(exp, float64(c.cfg.BackoffMax))
	d := time.Duration(exp/2 + c.cfg.Jitter()*exp/2) // "equal jitter": at least half the step
	return max(d, retryAfter)
}

// Reader is what the core reads outside transactions (the store, or caches in
// front of it).
func (c *Core) Reader() Reader { return c.cfg.Reader }
