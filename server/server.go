package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// DefaultMaxBody is the default limit of a request body: 3 MiB, above what any of
// the systems sends.
const DefaultMaxBody int64 = 3 << 20

// DefaultShutdownTimeout bounds how long Serve waits for in-flight requests on shutdown.
const DefaultShutdownTimeout = 20 * time.Second

// Inbox stores events durably; Append returns only after they are committed (group
// commit may batch several requests into one transaction). Results are in input order.
type Inbox interface {
	Append(ctx context.Context, events []event.Event) ([]store.AppendResult, error)
}

// InboxFunc adapts a function, such as store.Store.AppendEvents, to an Inbox.
type InboxFunc func(ctx context.Context, events []event.Event) ([]store.AppendResult, error)

// Append calls f.
func (f InboxFunc) Append(ctx context.Context, events []event.Event) ([]store.AppendResult, error) {
	return f(ctx, events)
}

// Config is what the server needs. A secret set to "" is unset: its endpoint answers
// 503 (a webhook) or 404 (the admin API) and never accepts unauthenticated input.
type Config struct {
	AppSecret, VerifyToken, OkdeskUser, OkdeskPass, OneCToken, TelegramSecret, AdminToken string
	// Operators and Viewers map a person's name to their bearer token of the admin
	// API: operators read and use the dialog controls (not reload); viewers only
	// read. Neither works while AdminToken is unset.
	Operators, Viewers map[string]string
	// Controls performs the operators' controls (the processor); nil: the control
	// endpoints answer 501.
	Controls Controls
	// Stream is the live feed of GET /api/v1/stream; nil: a feed that never changes.
	Stream *Stream

	// Inbox stores webhook and injected events. Required.
	Inbox Inbox
	// Store answers the admin lists and the readiness probe. Required.
	Store store.Store
	// Flows is the flow set in service. Required.
	Flows *engine.Holder
	// Reload is called by POST /api/v1/reload (dryRun: only say what it would do);
	// the caller counts the metric and logs. Nil means Flows.Reload (no dry run).
	Reload func(dryRun bool) engine.ReloadReport
	// Ready, when set, is one more condition of GET /readyz (the processor's writer
	// still commits): an error makes the probe answer 503 with the error's text
	// among the problems, so it must hold nothing secret.
	Ready func() error
	// Metrics receives the request and event counters and serves /metrics. Required.
	Metrics *metrics.Metrics
	// Logger receives the access log and errors; nil discards them.
	Logger *slog.Logger
	// Version is the build version, shown in the API document.
	Version string
	// MaxBody limits request bodies; 0 means DefaultMaxBody.
	MaxBody int64
	// ShutdownTimeout bounds the graceful shutdown of Serve; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Server is fixit's HTTP server. Build it with New.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	engine *gin.Engine
	docs   *apiDocs
	// Timeouts of a request's reading and writing, and of the live feed's
	// heartbeat (fields so that a test can shorten them).
	readTimeout, writeTimeout, heartbeat time.Duration
	// console is the operators' console; nil while the admin API is off.
	console *consoleState
}

// New builds the router. It panics when a required dependency is missing or the
// embedded API document is broken: both are programming errors found at start-up.
func New(cfg Config) *Server {
	if cfg.Inbox == nil || cfg.Store == nil || cfg.Flows == nil || cfg.Metrics == nil {
		panic("server.New: Inbox, Store, Flows and Metrics are required")
	}
	if cfg.Stream == nil {
		cfg.Stream = NewStream()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Reload == nil {
		cfg.Reload = func(dryRun bool) engine.ReloadReport {
			if dryRun {
				_, rep := cfg.Flows.Prepare()
				rep.DryRun = true
				return rep
			}
			return cfg.Flows.Reload()
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	docs, err := loadDocs(cfg.Version)
	if err != nil {
		panic("server.New: " + err.Error())
	}
	s := &Server{cfg: cfg, log: logger, now: time.Now, docs: docs,
		readTimeout: 60 * time.Second, writeTimeout: 60 * time.Second, heartbeat: 15 * time.Second}
	if cfg.AdminToken != "" {
		s.console = newConsole(func() time.Time { return s.now() })
	}
	s.engine = s.routes()
	return s
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Serve serves on ln until ctx is cancelled, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to Config.ShutdownTimeout) and
// returns nil on a clean shutdown. Request contexts are not cancelled by ctx, so a
// webhook that is storing its events finishes and is acknowledged.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      s.writeTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// The live feed's clients would hold a graceful shutdown until its deadline:
	// their feeds end when it begins (they reconnect to the next server).
	srv.RegisterOnShutdown(s.cfg.Stream.Close)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("http server shutting down", "addr", ln.Addr().String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Paths of the endpoints.
const (
	pathWABA     = "/webhooks/waba"
	pathOkdesk   = "/webhooks/okdesk"
	pathOneC     = "/webhooks/onec"
	pathTelegram = "/webhooks/telegram"
	adminPrefix  = "/api/v1"
)

// webhookPaths maps each webhook path to its source, the label of its metrics.
var webhookPaths = map[string]string{
	pathWABA:     event.SourceWABA,
	pathOkdesk:   event.SourceOkdesk,
	pathOneC:     event.SourceOneC,
	pathTelegram: event.SourceTelegram,
}

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode) // process-wide (atomic) in gin; it silences the debug route dump
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.ForwardedByClientIP = false
	r.ContextWithFallback = true
	_ = r.SetTrustedProxies(nil) // nil never fails; client IPs come from the socket

	r.Use(s.requestContext, s.accessLog, s.recovery)
	r.NoRoute(s.noRoute)
	r.NoMethod(s.noMethod)

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.cfg.Metrics.Registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})))
	r.GET("/openapi.json", s.openAPI)
	r.GET("/docs", s.docsPage)

	r.GET(pathWABA, s.wabaHandshake)
	r.POST(pathWABA, s.wabaWebhook)
	r.POST(pathOkdesk, s.okdeskWebhook)
	r.POST(pathOneC, s.onecWebhook)
	r.POST(pathTelegram, s.telegramWebhook)

	api := r.Group(adminPrefix, s.adminAuth)
	api.GET("/flows", s.listFlows)
	api.POST("/reload", need(roleAdmin), s.reload)
	api.GET("/dialogs", s.listDialogs)
	api.GET("/dialogs/:id", s.getDialog)
	api.GET("/events", s.listEvents)
	api.POST("/events", need(roleAdmin), s.injectEvent)
	api.GET("/outbox", s.listOutbox)
	api.GET("/stream", s.stream)
	ops := api.Group("", need(roleOperator))
	for _, kind := range event.Controls {
		path := "/dialogs/:id/" + kind
		if kind == event.ControlMessage {
			path = "/dialogs/:id/messages"
		}
		ops.POST(path, s.control(kind))
	}
	ops.POST("/outbox/:id/retry", s.retryAction)
	ops.POST("/events/:id/redrive", s.redrive)
	if s.console != nil {
		s.consoleRoutes(r)
	}
	return r
}

// ---- errors ----

// errorBody is every error answer: {"error": "message"}.
type errorBody struct {
	Error string `json:"error"`
}

// fail answers status with {"error": msg} and stops the chain. msg goes to the access
// log too, so it must never hold a secret or anything taken from the request.
func fail(c *gin.Context, status int, msg string) {
	c.Set(ctxKeyErrorMsg, msg)
	c.AbortWithStatusJSON(status, errorBody{Error: msg})
}

// failInput is fail for a message that may quote the request (a parser's complaint
// about a field's value): the sender gets it, the access log only a summary and the
// debug log the message, so no part of a body reaches an info line.
func (s *Server) failInput(c *gin.Context, status int, msg string) {
	s.logger(c).Debug("request refused", "reason", msg)
	c.Set(ctxKeyErrorMsg, "refused input (reason at debug level)")
	c.AbortWithStatusJSON(status, errorBody{Error: msg})
}

func (s *Server) noRoute(c *gin.Context) {
	// Under the admin API, only a caller with a token learns which paths exist.
	if isAdminPath(c.Request.URL.Path) && !s.authorized(c) {
		return
	}
	if s.consoleOff(c.Request.URL.Path) {
		fail(c, http.StatusNotFound, consoleOffMsg)
		return
	}
	fail(c, http.StatusNotFound, "no route "+c.Request.Method+" "+c.Request.URL.Path)
}

// noMethod answers 405. gin has already computed the Allow header from the registered
// routes (every other method whose tree matches the path); it is put in a stable order.
func (s *Server) noMethod(c *gin.Context) {
	if isAdminPath(c.Request.URL.Path) && !s.authorized(c) {
		c.Writer.Header().Del("Allow")
		return
	}
	allow := splitAllow(c.Writer.Header().Get("Allow"))
	c.Header("Allow", strings.Join(allow, ", "))
	fail(c, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; allowed: %s",
		c.Request.Method, c.Request.URL.Path, strings.Join(allow, ", ")))
}

// splitAllow parses an Allow header value into a sorted, duplicate-free list.
func splitAllow(v string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range strings.Split(v, ",") {
		if m = strings.TrimSpace(m); m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// ---- middleware ----

// Keys of values kept on the gin.Context for the access log.
const (
	ctxKeyErrorMsg = "fixit.error"
)

type loggerKey struct{}

// logger returns the request-scoped logger (it carries request_id).
func (s *Server) logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Request.Context().Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return s.log
}

// requestContext assigns the request id (a sane incoming X-Request-ID is kept),
// echoes it, and puts a logger carrying it into the request's context.
func (s *Server) requestContext(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.Header("X-Request-ID", id)
	c.Header("X-Content-Type-Options", "nosniff")
	l := s.log.With("request_id", id)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), loggerKey{}, l))
	c.Next()
}

// saneRequestID accepts 1–128 characters of letters, digits and ._:-, so a client
// cannot inject anything odd into the logs.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// accessLog writes one line per request at info: method, path (never the query
// string: hub.verify_token travels there), route, status, duration, bytes and the
// error message answered, if any. It also counts webhook requests by endpoint.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	if source, ok := webhookPaths[c.Request.URL.Path]; ok {
		s.cfg.Metrics.Requests.WithLabelValues(source, strconv.Itoa(status)).Inc()
	}
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("route", c.FullPath()),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.String("remote", c.ClientIP()),
	}
	if msg := c.GetString(ctxKeyErrorMsg); msg != "" {
		attrs = append(attrs, slog.String("error", msg))
	}
	s.logger(c).LogAttrs(c.Request.Context(), slog.LevelInfo, "http request", attrs...)
}

// recovery turns a panic in a handler into a logged error and a 500 answer.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler { // net/http's own signal to abort silently
			panic(p)
		}
		s.logger(c).Error("panic in http handler", "panic", fmt.Sprint(p), "route", c.FullPath(),
			"stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		fail(c, http.StatusInternalServerError, "internal error")
	}()
	c.Next()
}

// ---- health ----

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz is ready when the database answers, a flow set is loaded and Config.Ready
// has no objection. The database error is logged, not answered: the probe is
// unauthenticated.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	problems := []string{}
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.logger(c).Warn("readiness: database unreachable", "err", err)
		problems = append(problems, "database unreachable")
	}
	if s.cfg.Flows.Current() == nil {
		problems = append(problems, "no flows loaded")
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.logger(c).Warn("readiness: "+err.Error(), "err", err)
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready", "problems": problems})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
