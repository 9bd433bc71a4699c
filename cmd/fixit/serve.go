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
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/httpcall"
	"github.com/fixit-exchange/fixit/connectors/okdesk"
	"github.com/fixit-exchange/fixit/connectors/onec"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/processor"
	"github.com/fixit-exchange/fixit/engine/retention"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
	"github.com/fixit-exchange/fixit/server"
)

// config is everything serve reads from the environment (DESIGN A4).
type config struct {
	Addr, DB, Flows, AdminToken, LogLevel, LogFormat    string
	PprofAddr                                           string
	AppSecret, VerifyToken, WABAToken, WABAPhoneID      string
	WABAURL, OkdeskUser, OkdeskPass, OkdeskURL          string
	OkdeskToken, OneCToken, OneCURL, OneCUser, OneCPass string
	TelegramToken, TelegramSecret, TelegramURL          string
	// Retention is FIXIT_RETENTION as given ("" = keep everything).
	Retention string
}

func loadConfig() config {
	return config{
		Addr: envOr("FIXIT_ADDR", ":8000"), DB: envOr("FIXIT_DB", "data/fixit.db"), Flows: envOr("FIXIT_FLOWS", "flows.d"),
		PprofAddr:  os.Getenv("FIXIT_PPROF_ADDR"),
		AdminToken: os.Getenv("FIXIT_ADMIN_TOKEN"), LogLevel: envOr("FIXIT_LOG_LEVEL", "info"), LogFormat: envOr("FIXIT_LOG_FORMAT", "json"),
		AppSecret: os.Getenv("APP_SECRET"), VerifyToken: os.Getenv("WABA_VERIFY_TOKEN"),
		WABAToken: os.Getenv("WABA_ACCESS_TOKEN"), WABAPhoneID: os.Getenv("WABA_PHONE_NUMBER_ID"),
		WABAURL:    envOr("WABA_API_URL", waba.DefaultBaseURL),
		OkdeskUser: os.Getenv("OKDESK_USER"), OkdeskPass: os.Getenv("OKDESK_PASS"),
		OkdeskURL: os.Getenv("OKDESK_API_URL"), OkdeskToken: os.Getenv("OKDESK_API_TOKEN"),
		OneCToken: os.Getenv("ONEC_TOKEN"), OneCURL: os.Getenv("ONEC_ODATA_URL"), OneCUser: os.Getenv("ONEC_USER"), OneCPass: os.Getenv("ONEC_PASS"),
		TelegramToken: os.Getenv("TELEGRAM_BOT_TOKEN"), TelegramSecret: os.Getenv("TELEGRAM_SECRET_TOKEN"),
		TelegramURL: envOr("TELEGRAM_API_URL", telegram.DefaultBaseURL),
		Retention:   os.Getenv("FIXIT_RETENTION"),
	}
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

// registry builds the outbound connectors; each dry-runs when its credentials are unset.
func registry(c config, log *slog.Logger) (*connectors.Registry, error) {
	hc := outboundClient()
	reg := connectors.NewRegistry()
	wa := waba.New(waba.Config{BaseURL: c.WABAURL, AccessToken: c.WABAToken, PhoneNumberID: c.WABAPhoneID, HTTP: hc, Logger: log})
	tg, err := telegram.New(telegram.Config{BaseURL: c.TelegramURL, Token: c.TelegramToken, HTTP: hc, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	ok, err := okdesk.New(okdesk.Config{BaseURL: c.OkdeskURL, APIToken: c.OkdeskToken, HTTP: hc, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("okdesk: %w", err)
	}
	oc, err := onec.New(onec.Config{BaseURL: c.OneCURL, User: c.OneCUser, Pass: c.OneCPass, HTTP: hc, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("1c: %w", err)
	}
	hcall := httpcall.New(httpcall.Config{HTTP: hc, Logger: log})
	for _, s := range []connectors.Sender{wa, tg} {
		if err := reg.RegisterSender(s); err != nil {
			return nil, err
		}
	}
	for _, e := range []connectors.Executor{wa, tg, ok, oc, hcall} {
		if err := reg.Register(e); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func runServe(args []string, _, stderr io.Writer) int {
	// First of all: from here on no signal ends the process by Go's default.
	sig := catchSignals()
	defer sig.stop()
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: fixit serve (settings come from the environment; see .env.example)")
		return 2
	}
	c := loadConfig()
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
	defer release() // after st.Close: see store.Lock
	st, err := store.Open(ctx, c.DB, log)
	if err != nil {
		return unlessStopping(fmt.Errorf("open store: %w", err))
	}
	defer st.Close()

	flows := engine.NewHolder(nil, c.Flows)

	met := metrics.New(func(ctx context.Context) ([]metrics.DialogCount, error) {
		rows, err := st.Counts(ctx)
		out := make([]metrics.DialogCount, len(rows))
		for i, r := range rows {
			out[i] = metrics.DialogCount{Flow: r.Flow, State: r.State, Status: string(r.Status), Count: r.Count}
		}
		return out, err
	})
	met.WatchBacklog(func(ctx context.Context) (metrics.Backlog, error) {
		b, err := st.Backlog(ctx, time.Now())
		out := metrics.Backlog{InboxPending: b.InboxPending, InboxOldest: b.InboxOldest, TimersDue: b.TimersDue,
			Outbox: make(map[string]int64, len(b.Outbox))}
		for status, n := range b.Outbox {
			out.Outbox[string(status)] = n
		}
		return out, err
	}, time.Now)
	reg, err := registry(c, log)
	if err != nil {
		return err
	}
	proc := processor.New(processor.Config{Store: st, Flows: flows, Registry: reg, Metrics: met, Logger: log,
		FlowEnv: engine.FlowEnv(os.Environ())})
	// A flow set that would strand live dialogs is refused, at start-up and on reload.
	flows.Check = proc.StrandCheck
	rep := flows.Reload()
	met.Reloads.WithLabelValues(rep.Result).Inc()
	for _, d := range rep.Diagnostics {
		log.Warn("flow diagnostic", "file", d.File, "line", d.Line, "col", d.Col, "severity", string(d.Severity), "code", d.Code, "message", d.Message)
	}
	if rep.Result != engine.ReloadOK {
		return unlessStopping(fmt.Errorf("flows in %s have errors (run `fixit validate %s`)", c.Flows, c.Flows))
	}
	if err := proc.SaveVersions(ctx, flows.Current()); err != nil {
		return unlessStopping(err)
	}
	if err := proc.Adopt(ctx, flows.Current()); err != nil {
		return unlessStopping(err)
	}
	if soleUser(c.DB) {
		// A SQLite file has one server: actions left running were cut off by the death
		// of the previous process and are retried now rather than after their lease.
		n, err := proc.RecoverClaims(ctx)
		if err != nil {
			return unlessStopping(err)
		}
		if n > 0 {
			log.Warn("retrying actions interrupted by the previous stop", "actions", n)
		}
	}
	var reloadMu sync.Mutex
	reload := func() engine.ReloadReport {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		r := flows.Reload()
		met.Reloads.WithLabelValues(r.Result).Inc()
		switch r.Result {
		case engine.ReloadError:
			for _, d := range r.Diagnostics {
				log.Error("reload refused", "file", d.File, "line", d.Line, "col", d.Col, "code", d.Code, "message", d.Message)
			}
		case engine.ReloadOK:
			if err := proc.SaveVersions(context.Background(), flows.Current()); err != nil {
				log.Error("reload: store flow versions", "err", err)
			}
			if err := proc.Adopt(context.Background(), flows.Current()); err != nil {
				log.Error("reload: move live dialogs to the new versions", "err", err)
			}
			log.Info("flows reloaded", "added", r.Added, "changed", r.Changed, "removed", r.Removed)
		default:
			log.Info("flows unchanged")
		}
		return r
	}

	srv := server.New(server.Config{
		AppSecret: c.AppSecret, VerifyToken: c.VerifyToken, OkdeskUser: c.OkdeskUser, OkdeskPass: c.OkdeskPass,
		OneCToken: c.OneCToken, TelegramSecret: c.TelegramSecret, AdminToken: c.AdminToken,
		Inbox: proc.Inbox(), Store: st, Flows: flows, Reload: reload, Ready: proc.CheckWriter, Metrics: met, Logger: log, Version: version,
	})
	var purger *retention.Purger
	if keep > 0 {
		if purger, err = retention.New(retention.Config{Store: st, Keep: keep, Metrics: met, Logger: log,
			Busy: func() bool { return proc.Inbox().Waiting() > 0 }}); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return unlessStopping(nil)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	log.Info("fixit serving", "addr", ln.Addr().String(), "db", store.Describe(c.DB), "flows", flows.Current().Len(),
		"admin_api", c.AdminToken != "", "version", version)
	warnUnset(log, c)

	if c.PprofAddr != "" {
		stopPprof, err := servePprof(c.PprofAddr, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopPprof()
	}

	sig.reloadOnHUP(log, func() { reload() })

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
