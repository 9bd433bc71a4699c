package processor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// failingAdopt is a store whose AdoptDialogs (its own and its steps') fails from the fail'th call on
// (0: never).
type failingAdopt struct {
	store.Store
	calls, fail atomic.Int64
}

func (f *failingAdopt) Step(ctx context.Context, fn func(store.StepTx) error) error {
	return f.Store.Step(ctx, func(tx store.StepTx) error { return fn(adoptTx{tx, f}) })
}

func (f *failingAdopt) AdoptDialogs(ctx context.Context, flow, toHash string, moves map[string]string) (int64, error) {
	if err := f.failing(); err != nil {
		return 0, err
	}
	return f.Store.AdoptDialogs(ctx, flow, toHash, moves)
}

func (f *failingAdopt) failing() error {
	if n := f.fail.Load(); n > 0 && f.calls.Add(1) >= n {
		return errors.New("database away")
	}
	return nil
}

type adoptTx struct {
	store.StepTx
	f *failingAdopt
}

func (t adoptTx) AdoptDialogs(flow, toHash string, moves map[string]string) (int64, error) {
	if err := t.f.failing(); err != nil {
		return 0, err
	}
	return t.StepTx.AdoptDialogs(flow, toHash, moves)
}

// TestReloadIsAtomic: a reload that cannot move the live dialogs of its second
// flow moves none of the first's either and stores no version: the old set keeps
// serving every dialog as it was. Run again, it moves both.
func TestReloadIsAtomic(t *testing.T) {
	dir := t.TempDir()
	write := func(version string) {
		t.Helper()
		for _, f := range []struct{ name, on string }{{"ask", "telegram.message"}, {"bye", "waba.message"}} {
			src := "flow: " + f.name + "\nstart: " + f.on + "\ninitial: s\nmigrate: {}\nstates:\n  s:\n    on: { " + f.on +
				": [ { send: \"" + version + "\" } ] }\n"
			if err := os.WriteFile(filepath.Join(dir, f.name+".yaml"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("v1")
	h, fs := newWrapped(t, dir, func(st store.Store) *failingAdopt { return &failingAdopt{Store: st} })
	h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: "t1", Keys: []string{"telegram:1"},
		Contact: event.Contact{Channel: "telegram", ID: "1"}, Data: map[string]any{}})
	h.append(h.wa("hi"))
	h.settle()
	hashes := func() map[string]string {
		ds, _, err := h.st.ListDialogs(context.Background(), store.DialogFilter{}, store.Page{Limit: 10})
		if err != nil || len(ds) != 2 {
			t.Fatalf("dialogs %v %v", ds, err)
		}
		out := map[string]string{}
		for _, d := range ds {
			out[d.Flow] = d.FlowHash
		}
		return out
	}
	v1 := hashes()

	write("v2")
	fs.fail.Store(2)
	rep := h.p.Reload(context.Background(), false)
	if rep.Result != engine.ReloadError {
		t.Fatalf("reload with a failing move: %+v", rep)
	}
	if got := hashes(); got["ask"] != v1["ask"] || got["bye"] != v1["bye"] {
		t.Fatalf("after a failed reload the dialogs run %v, want %v", got, v1)
	}
	if f := h.flows.Current().Flow("ask"); f.Hash != v1["ask"] {
		t.Errorf("the failed reload swapped the set")
	}

	fs.fail.Store(0)
	h.reloadAndAdopt()
	got := hashes()
	for _, name := range []string{"ask", "bye"} {
		if want := h.flows.Current().Flow(name).Hash; got[name] != want || want == v1[name] {
			t.Errorf("%s: dialog on %.12s, want the new %.12s", name, got[name], want)
		}
	}
}
