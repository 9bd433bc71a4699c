package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/httpcall"
	"github.com/fixit-exchange/fixit/connectors/okdesk"
	"github.com/fixit-exchange/fixit/connectors/onec"
	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/files"
	"github.com/fixit-exchange/fixit/engine/processor"
	"github.com/fixit-exchange/fixit/engine/retention"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
	"github.com/fixit-exchange/fixit/server"
)

// config is everything serve reads from the environment.
type config struct {
	Addr, DB, Flows, AdminToken, LogLevel, LogFormat string
	PprofAddr                                        string
	AppSecret, VerifyToken, WABAToken                string
	// WABAPhoneIDs are WABA_PHONE_NUMBER_ID's business numbers, the default first.
	WABAPhoneIDs                                        []string
	WABAURL, OkdeskUser, OkdeskPass, OkdeskURL          string
	OkdeskToken, OneCToken, OneCURL, OneCUser, OneCPass string
	TelegramToken, TelegramSecret, TelegramURL          string
	LogContent                                          bool
	// Operators and Viewers map people's names to their admin API tokens.
	Operators, Viewers map[string]string
	// Retention is FIXIT_RETENTION as given ("" = keep everything).
	Retention string
	// Files is FIXIT_FILES: the folder of the file store (default beside the database).
	Files string
}

func loadConfig() (config, error) {
	ops, err := parsePeople("FIXIT_OPERATORS", os.Getenv("FIXIT_OPERATORS"))
	if err != nil {
		return config{}, err
	}
	viewers, err := parsePeople("FIXIT_VIEWERS", os.Getenv("FIXIT_VIEWERS"))
	if err != nil {
		return config{}, err
	}
	for name := range viewers {
		if _, dup := ops[name]; dup {
			return config{}, fmt.Errorf("FIXIT_VIEWERS: %s is an operator too (FIXIT_OPERATORS)", name)
		}
	}
	if err := checkPeople(os.Getenv("FIXIT_ADMIN_TOKEN"), ops, viewers); err != nil {
		return config{}, err
	}
	numbers, err := waba.ParsePhoneNumberIDs(os.Getenv("WABA_PHONE_NUMBER_ID"))
	if err != nil {
		return config{}, err
	}
	return config{
		Operators: ops, Viewers: viewers,
		Addr: envOr("FIXIT_ADDR", ":8000"), DB: envOr("FIXIT_DB", "data/fixit.db"), Flows: envOr("FIXIT_FLOWS", "flows.d"),
		PprofAddr:  os.Getenv("FIXIT_PPROF_ADDR"),
		AdminToken: os.Getenv("FIXIT_ADMIN_TOKEN"), LogLevel: envOr("FIXIT_LOG_LEVEL", "info"), LogFormat: envOr("FIXIT_LOG_FORMAT", "json"),
		AppSecret: os.Getenv("APP_SECRET"), VerifyToken: os.Getenv("WABA_VERIFY_TOKEN"),
		WABAToken: os.Getenv("WABA_ACCESS_TOKEN"), WABAPhoneIDs: numbers,
		WABAURL:    envOr("WABA_API_URL", waba.DefaultBaseURL),
		OkdeskUser: os.Getenv("OKDESK_USER"), OkdeskPass: os.Getenv("OKDESK_PASS"),
		OkdeskURL: os.Getenv("OKDESK_API_URL"), OkdeskToken: os.Getenv("OKDESK_API_TOKEN"),
		OneCToken: os.Getenv("ONEC_TOKEN"), OneCURL: os.Getenv("ONEC_ODATA_URL"), OneCUser: os.Getenv("ONEC_USER"), OneCPass: os.Getenv("ONEC_PASS"),
		TelegramToken: os.Getenv("TELEGRAM_BOT_TOKEN"), TelegramSecret: os.Getenv("TELEGRAM_SECRET_TOKEN"),
		TelegramURL: envOr("TELEGRAM_API_URL", telegram.DefaultBaseURL),
		LogContent:  os.Getenv("FIXIT_LOG_CONTENT") == "true",
		Retention:   os.Getenv("FIXIT_RETENTION"),
		Files:       os.Getenv("FIXIT_FILES"),
	}, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("FIXIT_LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("FIXIT_LOG_FORMAT=%q: want json or text", format)
}

// outboundClient is the HTTP client of every connector. Its transport keeps up to
// one idle connection per outbox worker to each API: net/http's default keeps two
// per host, so with 64 workers sending to graph.facebook.com nearly every message
// paid for a new connection (and, in production, a TLS handshake).
func outboundClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * processor.DefaultOutboxWorkers
	t.MaxIdleConnsPerHost = processor.DefaultOutboxWorkers
	return &http.Client{Timeout: 30 * time.Second, Transport: t}
}

// connectorRegistry builds the outbound connectors; each dry-runs when its
// credentials are unset.
func connectorRegistry(c config, log *slog.Logger, fs connectors.Files) (*connectors.Registry, error) {
	hc := outboundClient()
	return registry.New(registry.Config{Files: fs,
		WABA:     waba.Config{BaseURL: c.WABAURL, AccessToken: c.WABAToken, PhoneNumberIDs: c.WABAPhoneIDs, HTTP: hc, Logger: log},
		Telegram: telegram.Config{BaseURL: c.TelegramURL, Token: c.TelegramToken, HTTP: hc, Logger: log},
		Okdesk:   okdesk.Config{BaseURL: c.OkdeskURL, APIToken: c.OkdeskToken, HTTP: hc, Logger: log},
		OneC:     onec.Config{BaseURL: c.OneCURL, User: c.OneCUser, Pass: c.OneCPass, HTTP: hc, Logger: log},
		HTTP:     httpcall.Config{HTTP: hc, Logger: log},
	})
}

func runServe(args []string, _, stderr io.Writer) int {
	// First of all: from here on no signal ends the process by Go's default.
	sig := catchSignals()
	defer sig.stop()
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: fixit serve (settings come from the environment; see .env.example)")
		return 2
	}
	c, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "fixit serve: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "fixit serve: %v\n", err)
		return 2
	}
	var keep time.Duration
	if c.Retention != "" {
		if keep, err = retention.ParseKeep(c.Retention); err != nil {
			fmt.Fprintf(stderr, "fixit serve: FIXIT_RETENTION: %v\n", err)
			return 2
		}
	}
	sig.listen(log)
	if err := serve(sig, c, keep, log); err != nil {
		log.Error("fixit serve stopped", "err", err)
		return 1
	}
	return 0
}

// gcDefaults tunes the garbage collector for a server whose live heap is small
// and whose work allocates briskly: collect when the heap has grown 4× (GOGC=400)
// rather than 2×, within a soft limit of 192 MiB (GOMEMLIMIT), near which it
// collects as often as needed. Either variable set in the environment wins.
func gcDefaults() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(192 << 20)
	}
}

// app is a fixit server's parts, wired: the store, the flows, the processor and the
// HTTP server.
type app struct {
	st    *store.GormStore
	files *files.Store
	flows *engine.Holder
	met   *metrics.Metrics
	proc  *processor.Processor
	srv   *server.Server
}

// appOptions put other parts in place of the environment's: tests run the real
// server on a fake clock, with fake connectors, and listen to what it does.
type appOptions struct {
	now      func() time.Time     // default time.Now
	registry *connectors.Registry // default: the connectors the configuration names
	observer processor.Observer
	flowEnv  map[string]any // default: the FLOW_* variables of the environment
}

// newApp opens the store, loads the flows (they must be valid and fit the live
// dialogs; their versions are stored and dialogs that migrate are moved before
// anything is served) and wires the processor and the HTTP server. Close it with
// close.
func newApp(ctx context.Context, c config, log *slog.Logger, opt appOptions) (*app, error) {
	var storeOpts []store.Option
	if opt.now != nil {
		storeOpts = append(storeOpts, store.WithClock(opt.now))
	}
	if len(c.WABAPhoneIDs) > 0 {
		storeOpts = append(storeOpts, store.WithWABANumber(c.WABAPhoneIDs[0]))
	}
	st, err := store.Open(ctx, c.DB, log, storeOpts...)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	dir := c.Files
	if dir == "" {
		dir = files.DefaultDir(c.DB)
	}
	fs, err := files.Open(dir, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("FIXIT_FILES: %w", err)
	}
	log.Info("file store", "dir", dir)
	// The connectors perform the actions and describe them to the loader. A test's
	// fake connectors describe nothing: the real ones, dry-run, describe the actions.
	reg := opt.registry
	var specs *connectors.Registry
	if reg == nil {
		if reg, err = connectorRegistry(c, log, fs); err != nil {
			st.Close()
			return nil, err
		}
		specs = reg
	} else {
		specs = registry.DryRun()
	}
	loader, err := engine.NewLoader(specs)
	if err == nil {
		loader, err = withZone(loader)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &app{st: st, files: fs, flows: engine.NewHolder(opt.now, loader, c.Flows)}
	a.met = metrics.New(func(ctx context.Context) ([]metrics.DialogCount, error) {
		rows, err := st.Counts(ctx)
		out := make([]metrics.DialogCount, len(rows))
		for i, r := range rows {
			out[i] = metrics.DialogCount{Flow: r.Flow, State: r.State, Status: string(r.Status), Count: r.Count}
		}
		return out, err
	})
	now := opt.now
	if now == nil {
		now = time.Now
	}
	a.met.WatchBacklog(func(ctx context.Context) (metrics.Backlog, error) {
		b, err := st.Backlog(ctx, now())
		out := metrics.Backlog{InboxPending: b.InboxPending, InboxOldest: b.InboxOldest, TimersDue: b.TimersDue,
			Outbox: make(map[string]int64, len(b.Outbox))}
		for status, n := range b.Outbox {
			out.Outbox[string(status)] = n
		}
		return out, err
	}, now)
	env := opt.flowEnv
	if env == nil {
		env = engine.FlowEnv(os.Environ())
	}
	stream := server.NewStream()
	a.proc = processor.New(processor.Config{Store: st, Flows: a.flows, Registry: reg, Metrics: a.met, Logger: log,
		Now: opt.now, FlowEnv: env, LogContent: c.LogContent, Observer: feed{stream: stream, next: opt.observer},
		BusinessNumbers: c.WABAPhoneIDs,
		// A SQLite database has one server, which holds its lock (store.Lock).
		Exclusive: !store.IsPostgres(c.DB)})
	if rep := a.proc.Reload(ctx, false); rep.Result != engine.ReloadOK {
		a.close()
		return nil, fmt.Errorf("flows in %s have errors (run `fixit validate %s`)", c.Flows, c.Flows)
	}
	if soleUser(c.DB) {
		// A SQLite file has one server: actions left running were cut off by the death
		// of the previous process and are retried now rather than after their lease.
		n, err := a.proc.RecoverClaims(ctx)
		if err != nil {
			a.close()
			return nil, err
		}
		if n > 0 {
			log.Warn("retrying actions interrupted by the previous stop", "actions", n)
		}
	}
	a.srv = server.New(server.Config{
		AppSecret: c.AppSecret, VerifyToken: c.VerifyToken, OkdeskUser: c.OkdeskUser, OkdeskPass: c.OkdeskPass,
		OneCToken: c.OneCToken, TelegramSecret: c.TelegramSecret, AdminToken: c.AdminToken,
		Operators: c.Operators, Viewers: c.Viewers, Controls: controls{a.proc}, Stream: stream,
		Inbox: a.proc.Inbox(), Store: st, Flows: a.flows, Ready: a.proc.CheckWriter, Metrics: a.met, Logger: log, Version: version,
		Reload: func(dryRun bool) engine.ReloadReport { return a.proc.Reload(context.Background(), dryRun) },
	})
	return a, nil
}

// close commits what the inbox holds and releases the store; the processor must
// have stopped.
func (a *app) close() {
	a.proc.Inbox().Close()
	a.st.Close()
}

// serve runs the server until the first SIGTERM or SIGINT, then drains. A signal
// during start-up stops it cleanly there: serve returns nil.
func serve(sig *signals, c config, keep time.Duration, log *slog.Logger) error {
	gcDefaults()
	ctx := sig.Stopping()
	log.Info("fixit starting", "version", version, "pid", os.Getpid())
	// unlessStopping turns a start-up error caused by a stop signal into a clean stop.
	unlessStopping := func(err error) error {
		if ctx.Err() != nil {
			log.Info("fixit stopped during start-up")
			return nil
		}
		return err
	}

	release, err := store.Lock(c.DB)
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("%s is in use: another fixit serves it (a SQLite file has one server; several need PostgreSQL)", c.DB)
	}
	if err != nil {
		return err
	}
	defer release() // after the store is closed: see store.Lock
	a, err := newApp(ctx, c, log, appOptions{})
	if err != nil {
		return unlessStopping(err)
	}
	defer a.st.Close()
	proc, srv, flows := a.proc, a.srv, a.flows
	reload := func() { proc.Reload(context.Background(), false) }
	var purger *retention.Purger
	if keep > 0 {
		if purger, err = retention.New(retention.Config{Store: a.st, Keep: keep, Metrics: a.met, Logger: log, RemoveFiles: a.files.Remove,
			Busy: func() bool { return proc.Inbox().Waiting() > 0 }}); err != nil {
			proc.Inbox().Close()
			return err
		}
	}
	if ctx.Err() != nil {
		proc.Inbox().Close()
		return unlessStopping(nil)
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		proc.Inbox().Close()
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	log.Info("fixit serving", "addr", ln.Addr().String(), "db", store.Describe(c.DB), "flows", flows.Current().Len(),
		"admin_api", c.AdminToken != "", "operators", names(c.Operators), "viewers", names(c.Viewers), "version", version)
	warnUnset(log, c)

	if c.PprofAddr != "" {
		stopPprof, err := servePprof(c.PprofAddr, log)
		if err != nil {
			_ = ln.Close()
			proc.Inbox().Close()
			return err
		}
		defer stopPprof()
	}

	sig.reloadOnHUP(log, reload)

	procCtx, stopProc := context.WithCancel(context.Background())
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(procCtx) }()
	// Retention runs beside the work and stops at once on SIGTERM (a purge
	// transaction cut short rolls back).
	purgeDone := make(chan struct{})
	if purger != nil {
		go func() { defer close(purgeDone); purger.Run(ctx) }()
	} else {
		close(purgeDone)
	}

	err = srv.Serve(ctx, ln) // returns after a graceful shutdown on SIGTERM
	// Drain: no more requests; finish in-flight events and actions (an action's
	// outcome goes through the inbox as its result event, so the inbox closes
	// last), then commit what the inbox holds and stop.
	<-purgeDone
	stopProc()
	<-procDone
	proc.Inbox().Close()
	log.Info("fixit stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// servePprof serves Go's profiler (net/http/pprof) on its own listener, apart from
// the public routes; bind it to a loopback address. It returns a function that
// closes the listener.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("FIXIT_PPROF_ADDR: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Info("profiler serving", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	return func() { _ = hs.Close() }, nil
}

// soleUser reports whether the database named by dsn is served by this process
// alone: a SQLite file (replicas need PostgreSQL; see store.Open for the rule).
func soleUser(dsn string) bool { return !store.IsPostgres(dsn) }

// warnUnset says which connectors are off or dry-running, without their values.
func warnUnset(log *slog.Logger, c config) {
	for _, w := range []struct{ name, val, what string }{
		{"APP_SECRET", c.AppSecret, "POST /webhooks/waba answers 503"},
		{"WABA_VERIFY_TOKEN", c.VerifyToken, "the WhatsApp handshake answers 503"},
		{"OKDESK_PASS", c.OkdeskPass, "POST /webhooks/okdesk answers 503"},
		{"ONEC_TOKEN", c.OneCToken, "POST /webhooks/onec answers 503"},
		{"TELEGRAM_SECRET_TOKEN", c.TelegramSecret, "POST /webhooks/telegram answers 503"},
		{"WABA_ACCESS_TOKEN", c.WABAToken, "WhatsApp messages are dry-run"},
		{"OKDESK_API_TOKEN", c.OkdeskToken, "Okdesk calls are dry-run"},
		{"ONEC_ODATA_URL", c.OneCURL, "1C reads are dry-run"},
		{"TELEGRAM_BOT_TOKEN", c.TelegramToken, "Telegram messages are dry-run"},
	} {
		if w.val == "" {
			log.Warn(w.name+" is unset: "+w.what, "variable", w.name)
		}
	}
}
