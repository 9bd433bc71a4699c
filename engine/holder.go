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

// ReloadReport says what the last (re)load did.
type ReloadReport struct {
	At          time.Time   `json:"at"`
	Result      string      `json:"result"` // ok, error or unchanged
	Diagnostics Diagnostics `json:"diagnostics"`
	Added       []string    `json:"added,omitempty"`   // flow names new in this set
	Changed     []string    `json:"changed,omitempty"` // flows whose content hash changed
	Removed     []string    `json:"removed,omitempty"` // flows no longer in the set
}

// Holder serves the current FlowSet and replaces it atomically on reload: the new
// set is built and validated completely first; on any error the old set stays.
type Holder struct {
	loader *Loader
	paths  []string
	now    func() time.Time
	cur    atomic.Pointer[FlowSet]
	last   atomic.Pointer[ReloadReport]
	mu     sync.Mutex // one reload at a time
	// Check, when set, may refuse a new set that loaded cleanly (e.g. it would strand
	// waiting dialogs); its diagnostics are reported like load errors.
	Check func(old, next *FlowSet) Diagnostics
	// OnSwap, when set, runs after a new set is in place (e.g. to store its versions).
	OnSwap func(*FlowSet)
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

// Last returns the report of the last load or reload.
func (h *Holder) Last() ReloadReport {
	if r := h.last.Load(); r != nil {
		return *r
	}
	return ReloadReport{}
}

// Reload reads and validates the flow files and swaps the set in when it is valid
// and differs from the current one.
func (h *Holder) Reload() ReloadReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	next, diags := h.loader.Load(h.paths...)
	rep := ReloadReport{At: h.now().UTC(), Diagnostics: diags}
	old := h.cur.Load()
	if next != nil && h.Check != nil {
		if more := h.Check(old, next); len(more) > 0 {
			rep.Diagnostics = append(rep.Diagnostics, more...)
			rep.Diagnostics.Sort()
			if rep.Diagnostics.HasErrors() {
				next = nil
			}
		}
	}
	switch {
	case next == nil:
		rep.Result = ReloadError
	case old != nil && sameFlows(old, next):
		rep.Result = ReloadUnchanged
	default:
		rep.Result = ReloadOK
		rep.Added, rep.Changed, rep.Removed = diffFlows(old, next)
		h.cur.Store(next)
		if h.OnSwap != nil {
			h.OnSwap(next)
		}
	}
	if rep.Diagnostics == nil {
		rep.Diagnostics = Diagnostics{}
	}
	h.last.Store(&rep)
	return rep
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
