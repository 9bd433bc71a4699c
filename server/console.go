package server

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/server/console"
)

// The operators' console: HTML pages under /console/, served while the admin API
// is on (FIXIT_ADMIN_TOKEN set). A person signs in with their token (the
// administrator's, an operator's or a viewer's) and gets a session cookie; the
// token itself is kept nowhere. Pages are rendered here from the same store
// reads as the admin API, and every button goes through the same operations
// (the controls, retry, re-drive, reload) with the same roles.

const (
	consolePrefix = "/console"
	// Cookies of the console: the session, the sign-in form's CSRF value, the language.
	cookieSession = "fixit_console"
	cookieLogin   = "fixit_console_login"
	cookieLang    = "fixit_lang"
	// consoleMaxForm bounds a console form's body.
	consoleMaxForm = 64 << 10
	// ctxKeySession holds the request's session id.
	ctxKeySession = "fixit.console.session"
	ctxKeySess    = "fixit.console.sess"
)

// contentSecurityPolicy allows only the console's own files: no inline script or
// style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consoleState is the console's part of the server.
type consoleState struct {
	sessions *console.Sessions
	pages    map[string]*template.Template
	static   http.Handler
}

// newConsole parses the templates; it panics on a broken one (a programming
// error, caught by the tests).
func newConsole(now func() time.Time) *consoleState {
	cs := &consoleState{
		sessions: console.NewSessions(console.DefaultIdle, console.DefaultMaxAge, now),
		pages:    map[string]*template.Template{},
		static:   http.StripPrefix(consolePrefix+"/static/", http.FileServer(http.FS(console.Static()))),
	}
	files, err := fs.Glob(console.Templates(), "templates/*.html")
	if err != nil {
		panic("console templates: " + err.Error())
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t := template.Must(template.New(name).Funcs(consoleFuncs).ParseFS(console.Templates(),
			"templates/layout.html", "templates/parts.html", f))
		cs.pages[name] = t
	}
	return cs
}

// consoleFuncs are the templates' helpers.
var consoleFuncs = template.FuncMap{
	"join": strings.Join,
	"add":  func(a, b int) int { return a + b },
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // html/template escapes what it prints
		_ = enc.Encode(v)        // decoded JSON values: cannot fail
		return strings.TrimSpace(buf.String())
	},
	"lineView":    func(p *page, l console.TraceLine) lineView { return lineView{Line: l, Page: p, File: p.File} },
	"actionsView": func(p *page, items any) actionsView { return actionsView{page: p, Items: items} },
}

type lineView struct {
	Line console.TraceLine
	Page *page
	File string
}

type actionsView struct {
	*page
	Items any
}

// reloadView is a reload report on a page.
type reloadView struct {
	*page
	Report engine.ReloadReport
}

// page is what every template gets.
type page struct {
	Title, Lang, Nav, Path, CSRF, Who string
	Role                              int
	Flash                             *console.Flash
	Data                              any
	// File is the flow file of the dialog a trace shows.
	File string
	now  time.Time
}

// T is the text of key in the page's language.
func (p *page) T(key string, args ...any) string { return console.Text(p.Lang, key, args...) }

// when is a time on a page: exact in the title, relative in the text.
type when struct{ Stamp, Ago string }

// When formats t for the "ago" template.
func (p *page) When(t time.Time) when {
	return when{Stamp: t.UTC().Format("2006-01-02 15:04:05Z"), Ago: console.Ago(p.Lang, t, p.now)}
}

// Age says how long ago t was, without "ago".
func (p *page) Age(t time.Time) string { return console.Age(p.Lang, p.now.Sub(t)) }

// RoleKey is the catalog key of the person's role.
func (p *page) RoleKey() string {
	switch p.Role {
	case roleAdmin:
		return "role.admin"
	case roleOperator:
		return "role.operator"
	}
	return "role.viewer"
}

// CanOperate reports whether the person may use the controls.
func (p *page) CanOperate() bool { return allowed(principal{role: p.Role}, roleOperator) }

// Langs lists the console's languages for the switch.
func (p *page) Langs() []string { return console.Languages }

// consoleRoutes registers the console; it exists only while the admin API is on.
func (s *Server) consoleRoutes(r *gin.Engine) {
	r.GET(consolePrefix, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, consolePrefix+"/") })
	g := r.Group(consolePrefix, s.consoleHeaders)
	g.GET("/static/*file", s.consoleStatic)
	g.GET("/login", s.consoleLoginPage)
	g.POST("/login", s.consoleLogin)
	g.GET("/lang", s.consoleLang)

	a := g.Group("", s.consoleSession)
	a.GET("/", s.consoleOverview(false))
	a.GET("/overview/live", s.consoleOverview(true))
	a.POST("/logout", s.consoleLogout)
	a.GET("/stream", s.stream)
	a.GET("/flows", s.consoleFlows)
	a.POST("/flows/check", s.consoleNeed(roleAdmin), s.consoleReloadCheck)
	a.POST("/flows/reload", s.consoleNeed(roleAdmin), s.consoleReload)
	a.GET("/dialogs", s.consoleDialogs(false))
	a.GET("/dialogs/rows", s.consoleDialogs(true))
	a.GET("/dialogs/:id", s.consoleDialog(false))
	a.GET("/dialogs/:id/live", s.consoleDialog(true))
	a.POST("/dialogs/:id/:control", s.consoleNeed(roleOperator), s.consoleControl)
	a.GET("/outbox", s.consoleOutbox(false))
	a.GET("/outbox/live", s.consoleOutbox(true))
	a.POST("/outbox/:id/retry", s.consoleNeed(roleOperator), s.consoleRequeue("outbox item", "outbox.retried", consolePrefix+"/outbox",
		func(ctx context.Context, id int64, by string) error {
			_, err := s.cfg.Controls.RetryAction(ctx, id, by)
			return err
		}))
	a.GET("/events", s.consoleEvents(false))
	a.GET("/events/live", s.consoleEvents(true))
	a.POST("/events/:id/redrive", s.consoleNeed(roleOperator), s.consoleRequeue("event", "events.redriven", consolePrefix+"/events",
		func(ctx context.Context, seq int64, by string) error {
			_, err := s.cfg.Controls.Redrive(ctx, seq, by)
			return err
		}))
}

// consoleOff reports whether path is the console's while it is off.
func (s *Server) consoleOff(path string) bool {
	return s.cfg.AdminToken == "" && (path == consolePrefix || strings.HasPrefix(path, consolePrefix+"/"))
}

const consoleOffMsg = "the console is off: FIXIT_ADMIN_TOKEN is not set"

// consoleHeaders sets the security headers of every console answer.
func (s *Server) consoleHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

func (s *Server) consoleStatic(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	s.console.static.ServeHTTP(c.Writer, c.Request)
}

// lang is the request's language: the remembered choice, else the browser's.
func lang(c *gin.Context) string {
	if v, err := c.Cookie(cookieLang); err == nil && console.Supported(v) {
		return v
	}
	return console.Negotiate(c.GetHeader("Accept-Language"))
}

// newPage starts a page for the request.
func (s *Server) newPage(c *gin.Context, nav, title string) *page {
	p := &page{Lang: lang(c), Nav: nav, Path: c.Request.URL.RequestURI(), now: s.now()}
	p.Title = p.T(title)
	if v, ok := c.Get(ctxKeySess); ok {
		sess := v.(console.Session)
		p.Who, p.Role, p.CSRF = sess.Name, sess.Role, sess.CSRF
	}
	return p
}

// render writes a page (tmpl = "layout") or one of its fragments.
func (s *Server) render(c *gin.Context, status int, name, tmpl string, p *page) {
	if tmpl == "layout" && p.Who != "" {
		// Only a whole page shows the flash: a live fragment the old page asks for
		// while the browser follows a form's redirect must not take it.
		p.Flash = s.console.sessions.TakeFlash(c.GetString(ctxKeySession))
	}
	var buf bytes.Buffer
	if err := s.console.pages[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		s.logger(c).Error("render console page", "page", name, "template", tmpl, "err", err)
		c.Set(ctxKeyErrorMsg, "render failed")
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error"))
		c.Abort()
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// show renders a whole page, or only its live part for a fragment request.
func (s *Server) show(c *gin.Context, fragment bool, name, live string, p *page) {
	if fragment {
		s.render(c, http.StatusOK, name, live, p)
		return
	}
	s.render(c, http.StatusOK, name, "layout", p)
}

// consoleError answers an HTML error page.
func (s *Server) consoleError(c *gin.Context, status int, msg string) {
	p := s.newPage(c, "", "nav.overview")
	p.Title = http.StatusText(status)
	p.Data = struct {
		Status  int
		Message string
	}{status, msg}
	c.Set(ctxKeyErrorMsg, http.StatusText(status))
	s.render(c, status, "error", "layout", p)
	c.Abort()
}

// consoleFail logs an infrastructure error and answers the error page without it.
func (s *Server) consoleFail(c *gin.Context, what string, err error, attrs ...any) {
	s.logger(c).Error(what, append(attrs, "err", err)...)
	s.consoleError(c, http.StatusInternalServerError, console.Text(lang(c), "err.internal"))
}

// ---- sign-in, session, CSRF ----

// setCookie sets one of the console's cookies: HttpOnly, SameSite=Strict, for the
// console's paths only, Secure when the request came over TLS. maxAge < 0 deletes.
func setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: consolePrefix + "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (s *Server) consoleLoginPage(c *gin.Context) {
	if id, err := c.Cookie(cookieSession); err == nil {
		if _, ok := s.console.sessions.Get(id); ok {
			c.Redirect(http.StatusSeeOther, consolePrefix+"/")
			return
		}
	}
	s.loginForm(c, http.StatusOK, "")
}

// loginForm renders the sign-in form with a fresh CSRF value, kept in a cookie of
// its own (there is no session yet) and compared on submit.
func (s *Server) loginForm(c *gin.Context, status int, errKey string) {
	token := console.NewToken()
	setCookie(c, cookieLogin, token, 600)
	p := s.newPage(c, "", "login.title")
	var msg string
	if errKey != "" {
		msg = p.T(errKey)
	}
	p.Data = struct{ CSRF, Error string }{token, msg}
	s.render(c, status, "login", "layout", p)
}

func (s *Server) consoleLogin(c *gin.Context) {
	if !s.parseForm(c) {
		return
	}
	want, _ := c.Cookie(cookieLogin)
	if !console.SameToken(c.PostForm("csrf"), want) || !sameOrigin(c) {
		c.Set(ctxKeyErrorMsg, "sign-in form without its CSRF value")
		s.loginForm(c, http.StatusForbidden, "login.again")
		return
	}
	p, ok := s.lookup(strings.TrimSpace(c.PostForm("token")))
	if !ok {
		s.logger(c).Warn("console sign-in refused: unknown token")
		c.Set(ctxKeyErrorMsg, "unknown token")
		s.loginForm(c, http.StatusUnauthorized, "login.bad")
		return
	}
	id, _ := s.console.sessions.Create(p.name, p.role)
	setCookie(c, cookieSession, id, int(console.DefaultMaxAge/time.Second))
	setCookie(c, cookieLogin, "", -1)
	s.logger(c).Info("console sign-in", "who", p.name, "role", roleName(p.role))
	c.Redirect(http.StatusSeeOther, consolePrefix+"/")
}

func roleName(r int) string {
	switch r {
	case roleAdmin:
		return "admin"
	case roleOperator:
		return "operator"
	}
	return "viewer"
}

func (s *Server) consoleLogout(c *gin.Context) {
	s.console.sessions.Delete(c.GetString(ctxKeySession))
	setCookie(c, cookieSession, "", -1)
	s.logger(c).Info("console sign-out", "who", who(c).name)
	c.Redirect(http.StatusSeeOther, consolePrefix+"/login")
}

// consoleSession lets through requests of a live session: it names the person
// for the handlers (who) and checks the CSRF value of every POST. Without a
// session a page redirects to the sign-in form; a live update answers 401 and
// tells htmx to go there.
func (s *Server) consoleSession(c *gin.Context) {
	id, _ := c.Cookie(cookieSession)
	sess, ok := s.console.sessions.Get(id)
	if !ok {
		c.Set(ctxKeyErrorMsg, "no console session")
		if c.Request.Method == http.MethodGet && c.GetHeader("HX-Request") == "" && c.GetHeader("Accept") != "text/event-stream" {
			c.Redirect(http.StatusSeeOther, consolePrefix+"/login")
			c.Abort()
			return
		}
		c.Header("HX-Redirect", consolePrefix+"/login")
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	c.Set(ctxKeyWho, principal{name: sess.Name, role: sess.Role})
	c.Set(ctxKeySession, id)
	c.Set(ctxKeySess, sess)
	if c.Request.Method == http.MethodPost {
		if !s.parseForm(c) {
			return
		}
		if !console.SameToken(c.PostForm("csrf"), sess.CSRF) || !sameOrigin(c) {
			s.consoleError(c, http.StatusForbidden, console.Text(lang(c), "err.csrf"))
			return
		}
	}
	c.Next()
}

// sameOrigin refuses a request a browser says came from another site (the
// Sec-Fetch-Site and Origin headers); requests without them pass (the CSRF value
// is the check that always applies).
func sameOrigin(c *gin.Context) bool {
	switch c.GetHeader("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := c.GetHeader("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != c.Request.Host {
			return false
		}
	}
	return true
}

// parseForm reads a console form's body, up to consoleMaxForm bytes.
func (s *Server) parseForm(c *gin.Context) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, consoleMaxForm)
	if err := c.Request.ParseForm(); err != nil {
		s.consoleError(c, http.StatusBadRequest, "the form could not be read")
		return false
	}
	return true
}

// consoleNeed lets through people of at least role; others get 403.
func (s *Server) consoleNeed(role int) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !allowed(who(c), role) {
			s.consoleError(c, http.StatusForbidden, console.Text(lang(c), "err.forbidden"))
			return
		}
		c.Next()
	}
}

// consoleLang remembers a language choice and goes back to the page it was made on.
func (s *Server) consoleLang(c *gin.Context) {
	to := c.Query("to")
	if !console.Supported(to) {
		to = console.Languages[0]
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: cookieLang, Value: to, Path: consolePrefix + "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteLaxMode})
	c.Redirect(http.StatusSeeOther, safeBack(c.Query("back")))
}

// safeBack is a console path to return to, or the overview: never another site.
func safeBack(back string) string {
	home := consolePrefix + "/"
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(back, home) || strings.Contains(back, `\`) {
		return home
	}
	if out := u.RequestURI(); strings.HasPrefix(out, home) && !strings.HasPrefix(out, "//") {
		return out
	}
	return home
}

// flash keeps a message for the person's next page.
func (s *Server) flash(c *gin.Context, kind, text string) {
	s.console.sessions.SetFlash(c.GetString(ctxKeySession), console.Flash{Kind: kind, Text: text})
}
