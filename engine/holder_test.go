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
	h.OnSwap = func(*FlowSet) { swaps++ }
	if r := h.Reload(); r.Result != ReloadOK || h.Current().Flow("a") == nil || swaps != 1 || len(r.Added) != 1 {
		t.Fatalf("first load: %+v", r)
	}
	first := h.Current()
	if r := h.Reload(); r.Result != ReloadUnchanged || h.Current() != first || swaps != 1 {
		t.Errorf("unchanged reload swapped: %+v", r)
	}
	write("b.yaml", "flow: b\nstart: waba.message\ninitial: nope\nstates: { s: { final: true } }\n")
	r := h.Reload()
	if r.Result != ReloadError || h.Current() != first || len(r.Diagnostics) == 0 || h.Last().Result != ReloadError {
		t.Errorf("broken file must keep the old set: %+v", r)
	}
	write("b.yaml", "flow: b\nstart: telegram.message\ninitial: s\nstates: { s: { final: true } }\n")
	write("a.yaml", good+"# changed\n")
	r = h.Reload()
	if r.Result != ReloadOK || h.Current().Flow("b") == nil || len(r.Added) != 1 || len(r.Changed) != 1 || swaps != 2 {
		t.Errorf("fixed reload: %+v", r)
	}
	h.Check = func(old, next *FlowSet) Diagnostics {
		return Diagnostics{{File: "x", Line: 1, Col: 1, Severity: SevError, Code: CodeUnknownState, Message: "refused"}}
	}
	write("a.yaml", good+"# again\n")
	if r := h.Reload(); r.Result != ReloadError || h.Current().Flow("a").Hash == "" || swaps != 2 {
		t.Errorf("Check must be able to refuse a set: %+v", r)
	}
}
