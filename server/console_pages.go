package server

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/server/console"
)

// reader is the store's console reads; every GormStore has them.
func (s *Server) reader(c *gin.Context) (store.ConsoleReader, bool) {
	r, ok := s.cfg.Store.(store.ConsoleReader)
	if !ok {
		s.consoleError(c, http.StatusNotImplemented, "this store has no console reads")
	}
	return r, ok
}

type count struct {
	Name  string
	Count int64
}

// ---- overview ----

func (s *Server) consoleOverview(fragment bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		r, ok := s.reader(c)
		if !ok {
			return
		}
		p := s.newPage(c, "overview", "nav.overview")
		o, err := r.Overview(c.Request.Context(), p.now)
		if err != nil {
			s.consoleFail(c, "console overview", err)
			return
		}
		data := struct {
			Overview   *store.Overview
			Statuses   []count
			Outbox     []count
			LastReload *reloadView
		}{Overview: o, LastReload: &reloadView{page: p, Report: s.cfg.Flows.Last()}}
		for _, st := range dialog.Statuses {
			data.Statuses = append(data.Statuses, count{string(st), o.Dialogs[st]})
		}
		for _, st := range []store.OutboxStatus{store.OutboxPending, store.OutboxRunning, store.OutboxFailed, store.OutboxDead} {
			data.Outbox = append(data.Outbox, count{string(st), o.Outbox[st]})
		}
		p.Data = data
		s.show(c, fragment, "overview", "overview-live", p)
	}
}

// ---- flows and reload ----

type flowView struct {
	*engine.Flow
	Live    int64
	Diagram console.Diagram
}

func (s *Server) consoleFlows(c *gin.Context) {
	s.flowsPage(c, nil)
}

// flowsPage renders the flows with their diagrams; dry, when given, is the
// result of a reload's dry run waiting for a decision.
func (s *Server) flowsPage(c *gin.Context, dry *engine.ReloadReport) {
	r, ok := s.reader(c)
	if !ok {
		return
	}
	p := s.newPage(c, "flows", "nav.flows")
	ctx := c.Request.Context()
	counts, err := s.cfg.Store.Counts(ctx)
	if err != nil {
		s.consoleFail(c, "console flows: count dialogs", err)
		return
	}
	branches, err := r.BranchCounts(ctx, p.now.Add(-24*time.Hour))
	if err != nil {
		s.consoleFail(c, "console flows: count branches", err)
		return
	}
	data := struct {
		Flows      []flowView
		LastReload *reloadView
		DryRun     *reloadView
		CanReload  bool
	}{LastReload: &reloadView{page: p, Report: s.cfg.Flows.Last()}, CanReload: allowed(who(c), roleAdmin)}
	if dry != nil {
		data.DryRun = &reloadView{page: p, Report: *dry}
	}
	if set := s.cfg.Flows.Current(); set != nil {
		for _, f := range set.Flows() {
			live := map[string]int64{}
			var total int64
			for _, n := range counts {
				if n.Flow == f.Name && !n.Status.Ended() {
					live[n.State] += n.Count
					total += n.Count
				}
			}
			taken := map[engine.Pos]int64{}
			var started int64
			for _, b := range branches {
				if b.Flow != f.Name || b.Hash != f.Hash {
					continue // positions of another version say nothing about this file
				}
				if b.Line == 0 {
					started += b.Count
				} else {
					taken[engine.Pos{Line: b.Line, Col: b.Col}] += b.Count
				}
			}
			data.Flows = append(data.Flows, flowView{Flow: f, Live: total, Diagram: console.Layout(f, live, taken, started)})
		}
	}
	p.Data = data
	s.render(c, http.StatusOK, "flows", "layout", p)
}

// consoleReloadCheck shows what a reload would do (a dry run) and asks to go on.
func (s *Server) consoleReloadCheck(c *gin.Context) {
	rep := s.cfg.Reload(true)
	s.flowsPage(c, &rep)
}

// consoleReload reloads the flows, as POST /api/v1/reload does.
func (s *Server) consoleReload(c *gin.Context) {
	rep := s.cfg.Reload(false)
	l := lang(c)
	s.logger(c).Info("console reload", "who", who(c).name, "result", rep.Result)
	if rep.Result == engine.ReloadError {
		s.flash(c, "error", console.Text(l, "reload.refused", countErrors(rep.Diagnostics)))
	} else {
		s.flash(c, "ok", console.Text(l, "reload.done", rep.Result))
	}
	c.Redirect(http.StatusSeeOther, consolePrefix+"/flows")
}

// ---- dialogs ----

// dialogPage is the console's page size of the dialog list.
const dialogPage = 50

func (s *Server) consoleDialogs(fragment bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		r, ok := s.reader(c)
		if !ok {
			return
		}
		p := s.newPage(c, "dialogs", "nav.dialogs")
		q := store.DialogSearch{
			DialogFilter: store.DialogFilter{Flow: strings.TrimSpace(c.Query("flow")), State: strings.TrimSpace(c.Query("state")),
				Key: strings.TrimSpace(c.Query("key"))},
			Phone: c.Query("phone"), Name: c.Query("name"),
		}
		if st := dialog.Status(c.Query("status")); st.Valid() {
			q.Status = st
		}
		cursor := c.Query("cursor")
		rows, next, err := r.SearchDialogs(c.Request.Context(), q, store.Page{Limit: dialogPage, Cursor: cursor})
		if errors.Is(err, store.ErrBadCursor) {
			cursor = ""
			rows, next, err = r.SearchDialogs(c.Request.Context(), q, store.Page{Limit: dialogPage})
		}
		if err != nil {
			s.consoleFail(c, "console dialogs", err)
			return
		}
		base := url.Values{}
		for k, v := range map[string]string{"flow": q.Flow, "state": q.State, "key": q.Key, "phone": q.Phone,
			"name": q.Name, "status": string(q.Status)} {
			if v != "" {
				base.Set(k, v)
			}
		}
		query := cloneWith(base, "cursor", cursor)
		data := struct {
			Q                       store.DialogSearch
			Dialogs                 []store.Dialog
			FlowNames, StatusNames  []string
			Query, Next, FirstQuery string
			First                   bool
		}{Q: q, Dialogs: rows, StatusNames: dialogStatuses, Query: query, FirstQuery: base.Encode(), First: cursor != ""}
		if next != "" {
			data.Next = cloneWith(base, "cursor", next)
		}
		if set := s.cfg.Flows.Current(); set != nil {
			for _, f := range set.Flows() {
				data.FlowNames = append(data.FlowNames, f.Name)
			}
		}
		p.Data = data
		s.show(c, fragment, "dialogs", "dialog-rows", p)
	}
}

// cloneWith encodes v with key set to value (left out when empty).
func cloneWith(v url.Values, key, value string) string {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	if value != "" {
		out.Set(key, value)
	}
	return out.Encode()
}

func (s *Server) consoleDialog(fragment bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		r, ok := s.reader(c)
		if !ok {
			return
		}
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			s.consoleError(c, http.StatusNotFound, console.Text(lang(c), "err.notfound"))
			return
		}
		ctx := c.Request.Context()
		d, err := s.cfg.Store.GetDialog(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			s.consoleError(c, http.StatusNotFound, console.Text(lang(c), "err.notfound"))
			return
		}
		if err != nil {
			s.consoleFail(c, "console dialog", err, "dialog_id", id)
			return
		}
		hist, err := s.cfg.Store.DialogHistory(ctx, id)
		if err != nil {
			s.consoleFail(c, "console dialog history", err, "dialog_id", id)
			return
		}
		var seqs []int64
		for _, h := range hist {
			if h.EventSeq != nil && (len(seqs) == 0 || seqs[len(seqs)-1] != *h.EventSeq) {
				seqs = append(seqs, *h.EventSeq)
			}
		}
		slices.Sort(seqs)
		seqs = slices.Compact(seqs)
		events, err := r.EventsByID(ctx, seqs)
		if err != nil {
			s.consoleFail(c, "console dialog events", err, "dialog_id", id)
			return
		}
		actions, _, err := s.cfg.Store.ListOutbox(ctx, store.OutboxFilter{DialogID: id}, store.Page{Limit: store.MaxLimit})
		if err != nil {
			s.consoleFail(c, "console dialog actions", err, "dialog_id", id)
			return
		}
		timers, err := s.cfg.Store.DialogTimers(ctx, id)
		if err != nil {
			s.consoleFail(c, "console dialog timers", err, "dialog_id", id)
			return
		}
		p := s.newPage(c, "dialogs", "dialog.title")
		p.Title += " #" + strconv.FormatInt(id, 10)
		data := struct {
			D        *store.Dialog
			View     console.DialogView
			States   []string
			Controls map[string]bool
		}{D: d, View: console.BuildDialogView(hist, events, actions, timers)}
		if set := s.cfg.Flows.Current(); set != nil {
			f := set.ByHash(d.FlowHash)
			if f == nil {
				f = set.Flow(d.Flow)
			}
			if f != nil {
				p.File, data.States = f.File, f.StateNames
			}
		}
		if p.CanOperate() {
			data.Controls = map[string]bool{}
			for _, kind := range event.Controls {
				if engine.ControlFits(kind, d.Status) == nil {
					data.Controls[kind] = true
				}
			}
		}
		p.Data = data
		s.show(c, fragment, "dialog", "dialog-live", p)
	}
}

// consoleControl applies a dialog control from its form, through the same path
// as the admin API's control endpoints.
func (s *Server) consoleControl(c *gin.Context) {
	kind := c.Param("control")
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 || !slices.Contains(event.Controls, kind) {
		s.consoleError(c, http.StatusNotFound, console.Text(lang(c), "err.notfound"))
		return
	}
	if s.cfg.Controls == nil {
		s.consoleError(c, http.StatusNotImplemented, "the dialog controls are not available in this server")
		return
	}
	b := controlBody{Reason: c.PostForm("reason"), State: c.PostForm("state"), Status: c.PostForm("status"), Text: c.PostForm("text")}
	if name := strings.TrimSpace(c.PostForm("template_name")); name != "" {
		b.Template = &templateBody{Name: name, Language: strings.TrimSpace(c.PostForm("template_language")), Params: []string{}}
		for _, line := range strings.Split(c.PostForm("template_params"), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				b.Template.Params = append(b.Template.Params, line)
			}
		}
	}
	back := consolePrefix + "/dialogs/" + strconv.FormatInt(id, 10)
	_, err = s.applyControl(c.Request.Context(), who(c), kind, id, &b)
	l := lang(c)
	var bad *badControl
	switch status, msg := controlOutcome("dialog", id, err); {
	case err == nil:
		s.logger(c).Info("console control", "who", who(c).name, "control", kind, "dialog_id", id)
		s.flash(c, "ok", console.Text(l, "ctl.done", console.Text(l, "ctl."+kind)))
	case errors.As(err, &bad):
		s.flash(c, "error", bad.msg)
	case status == http.StatusAccepted:
		s.flash(c, "ok", console.Text(l, "ctl.queued"))
	case status == http.StatusInternalServerError:
		s.consoleFail(c, "console control", err, "dialog_id", id, "control", kind)
		return
	default:
		s.flash(c, "error", msg)
	}
	c.Redirect(http.StatusSeeOther, back)
}

// ---- outbox ----

// problemsPage bounds each section of the outbox and events pages.
const problemsPage = 200

type outboxSection struct {
	Name  string
	Items []store.OutboxItem
}

func (s *Server) consoleOutbox(fragment bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := s.newPage(c, "outbox", "nav.outbox")
		ctx := c.Request.Context()
		var sections []outboxSection
		for _, st := range []store.OutboxStatus{store.OutboxDead, store.OutboxFailed, store.OutboxPending} {
			items, _, err := s.cfg.Store.ListOutbox(ctx, store.OutboxFilter{Status: st}, store.Page{Limit: problemsPage})
			if err != nil {
				s.consoleFail(c, "console outbox", err, "status", st)
				return
			}
			name := string(st)
			if st == store.OutboxPending {
				name = "retrying"
				items = slices.DeleteFunc(items, func(it store.OutboxItem) bool { return it.LastError == "" })
			}
			sections = append(sections, outboxSection{Name: name, Items: items})
		}
		p.Data = struct{ Sections []outboxSection }{sections}
		s.show(c, fragment, "outbox", "outbox-live", p)
	}
}

// consoleRequeue handles a retry or a re-drive button: do queues the item with
// the id of the path again, on behalf of the person; okKey is the text of the
// message shown after it; the page goes back to the form's "back" field, else to
// list.
func (s *Server) consoleRequeue(what, okKey, list string, do func(ctx context.Context, id int64, by string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			s.consoleError(c, http.StatusNotFound, console.Text(lang(c), "err.notfound"))
			return
		}
		if s.cfg.Controls == nil {
			s.consoleError(c, http.StatusNotImplemented, "the controls are not available in this server")
			return
		}
		err = do(c.Request.Context(), id, who(c).name)
		if !s.settled(c, what, id, err, console.Text(lang(c), okKey, id)) {
			return
		}
		c.Redirect(http.StatusSeeOther, safeBack(cmp.Or(c.PostForm("back"), list)))
	}
}

// settled flashes the outcome of a retry or a re-drive; false when the error
// page was answered instead.
func (s *Server) settled(c *gin.Context, what string, id int64, err error, okText string) bool {
	status, msg := controlOutcome(what, id, err)
	switch {
	case err == nil:
		s.logger(c).Info("console "+what, "who", who(c).name, "id", id)
		s.flash(c, "ok", okText)
	case status == http.StatusInternalServerError:
		s.consoleFail(c, "console "+what, err, "id", id)
		return false
	default:
		s.flash(c, "error", msg)
	}
	return true
}

// ---- events ----

type eventSection struct {
	Name  string
	Items []store.Event
}

func (s *Server) consoleEvents(fragment bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := s.newPage(c, "events", "nav.events")
		var sections []eventSection
		for _, st := range []store.EventStatus{store.EventUnrouted, store.EventFailed} {
			items, _, err := s.cfg.Store.ListEvents(c.Request.Context(), store.EventFilter{Status: st}, store.Page{Limit: problemsPage})
			if err != nil {
				s.consoleFail(c, "console events", err, "status", st)
				return
			}
			sections = append(sections, eventSection{Name: string(st), Items: items})
		}
		p.Data = struct{ Sections []eventSection }{sections}
		s.show(c, fragment, "events", "events-live", p)
	}
}
