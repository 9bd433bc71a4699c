package engine

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Reload results.
const (
	ReloadOK        = "ok"
	ReloadError     = "error"
	ReloadUnchanged = "unchanged"
)

// ReloadReport says what the last (re)load did, or what a dry run would do.
type ReloadReport struct {
	At          time.Time   `json:"at"`
	Result      string      `json:"result"` // ok, error or unchanged
	DryRun      bool        `json:"dry_run,omitempty"`
	Diagnostics Diagnostics `json:"diagnostics"`
	Added       []string    `json:"added,omitempty"`   // flow names new in this set
	Changed     []string    `json:"changed,omitempty"` // flows whose content hash changed
	Removed     []string    `json:"removed,omitempty"` // flows no longer in the set
	// Stranded counts the live dialogs a flow's `migrate` would move into a state the
	// new version does not have (which refuses the set).
	Stranded []StateCount `json:"stranded,omitempty"`
	// Migrated counts the live dialogs moved (or, in a dry run, that would move) to
	// the new version of a flow that declares `migrate`, by their state before.
	Migrated []StateCount `json:"migrated,omitempty"`
}

// StateCount is a number of dialogs of one flow in one state.
type StateCount struct {
	Flow    string `json:"flow"`
	State   string `json:"state"`
	Dialogs int64  `json:"dialogs"`
}

// Holder serves the current FlowSet and replaces it atomically: a new set is
// built and checked completely first (Prepare), and swapped in as a whole
// (Commit); on any error the old set stays.
type Holder struct {
	loader *Loader
	paths  []string
	now    func() time.Time
	cur    atomic.Pointer[FlowSet]
	last   atomic.Pointer[ReloadReport]
	mu     sync.Mutex // one reload at a time
}

// NewHolder returns a Holder for the flow files at paths, compiled by loader;
// call Reload to load them.
func NewHolder(now func() time.Time, loader *Loader, paths ...string) *Holder {
	if now == nil {
		now = time.Now
	}
	return &Holder{loader: loader, paths: paths, now: now}
}

// Loader returns the loader the holder compiles flows with (also the older
// versions running dialogs keep).
func (h *Holder) Loader() *Loader { return h.loader }

// Current returns the flow set in service (nil before the first successful load).
func (h *Holder) Current() *FlowSet { return h.cur.Load() }

// Paths are the flow files and folders the holder loads.
func (h *Holder) Paths() []string { return h.paths }

// Last returns the report of the last load or reload.
func (h *Holder) Last() ReloadReport {
	if r := h.last.Load(); r != nil {
		return *r
	}
	return ReloadReport{}
}

// Reload loads the flow files and swaps the set in when it is valid and differs
// from the current one: Prepare, then Commit. A server that must check a set
// against its live dialogs and store its versions first calls those two itself.
func (h *Holder) Reload() ReloadReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	next, rep := h.prepare()
	h.commit(next, rep)
	return rep
}

// Prepare reads and validates the flow files. It returns the new set, and a report
// whose Result is ok, or unchanged (nil set) when the files are the set in service,
// or error (nil set) with the diagnostics. It changes nothing: hand the set to
// Commit, or drop it.
func (h *Holder) Prepare() (*FlowSet, ReloadReport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.prepare()
}

func (h *Holder) prepare() (*FlowSet, ReloadReport) {
	next, diags := h.loader.Load(h.paths...)
	rep := ReloadReport{At: h.now().UTC(), Diagnostics: diags}
	if rep.Diagnostics == nil {
		rep.Diagnostics = Diagnostics{}
	}
	old := h.cur.Load()
	switch {
	case next == nil:
		rep.Result = ReloadError
	case old != nil && sameFlows(old, next):
		rep.Result, next = ReloadUnchanged, nil
	default:
		rep.Result = ReloadOK
		rep.Added, rep.Changed, rep.Removed = diffFlows(old, next)
	}
	return next, rep
}

// Commit puts next in service (when it is not nil and rep's result is ok) and
// keeps rep as the last report.
func (h *Holder) Commit(next *FlowSet, rep ReloadReport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commit(next, rep)
}

func (h *Holder) commit(next *FlowSet, rep ReloadReport) {
	if next != nil && rep.Result == ReloadOK {
		h.cur.Store(next)
	}
	h.last.Store(&rep)
}

func sameFlows(a, b *FlowSet) bool {
	if len(a.byName) != len(b.byName) {
		return false
	}
	for name, f := range a.byName {
		g := b.byName[name]
		if g == nil || g.Hash != f.Hash || g.File != f.File {
			return false
		}
	}
	return true
}

func diffFlows(old, next *FlowSet) (added, changed, removed []string) {
	for name, f := range next.byName {
		switch {
		case old == nil || old.byName[name] == nil:
			added = append(added, name)
		case old.byName[name].Hash != f.Hash:
			changed = append(changed, name)
		}
	}
	if old != nil {
		for name := range old.byName {
			if next.byName[name] == nil {
				removed = append(removed, name)
			}
		}
	}
	sort.Strings(added)
	sort.Strings(changed)
	sort.Strings(removed)
	return added, changed, removed
}
