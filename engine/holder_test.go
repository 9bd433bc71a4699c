package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHolderReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := "flow: a\nstart: waba.message\ninitial: s\nstates: { s: { final: true } }\n"
	write("a.yaml", good)
	h := NewHolder(func() time.Time { return t0 }, testLoader, dir)
	swaps := 0
	prev := h.Current()
	reload := func() ReloadReport {
		r := h.Reload()
		if h.Current() != prev {
			swaps++
			prev = h.Current()
		}
		return r
	}
	if r := reload(); r.Result != ReloadOK || h.Current().Flow("a") == nil || swaps != 1 || len(r.Added) != 1 {
		t.Fatalf("first load: %+v", r)
	}
	first := h.Current()
	if r := reload(); r.Result != ReloadUnchanged || h.Current() != first || swaps != 1 {
		t.Errorf("unchanged reload swapped: %+v", r)
	}
	write("b.yaml", "flow: b\nstart: waba.message\ninitial: nope\nstates: { s: { final: true } }\n")
	r := reload()
	if r.Result != ReloadError || h.Current() != first || len(r.Diagnostics) == 0 || h.Last().Result != ReloadError {
		t.Errorf("broken file must keep the old set: %+v", r)
	}
	write("b.yaml", "flow: b\nstart: telegram.message\ninitial: s\nstates: { s: { final: true } }\n")
	write("a.yaml", good+"# changed\n")
	r = reload()
	if r.Result != ReloadOK || h.Current().Flow("b") == nil || len(r.Added) != 1 || len(r.Changed) != 1 || swaps != 2 {
		t.Errorf("fixed reload: %+v", r)
	}
	// Prepare changes nothing; Commit of an error report keeps the set in service.
	write("a.yaml", good+"# again\n")
	next, r := h.Prepare()
	if r.Result != ReloadOK || next == nil || h.Current() != prev {
		t.Errorf("prepare: %+v", r)
	}
	r.Result = ReloadError
	h.Commit(next, r)
	if h.Current() != prev || h.Last().Result != ReloadError {
		t.Errorf("a refused set must not be swapped in: %+v", h.Last())
	}
}
