package processor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// TestEventBehindAnEndingStep: events of a contact wait in its dialog's lane
// behind the step that ends the dialog; each is routed again, not dropped or
// failed: the first starts a new dialog, the next goes to that one.
func TestEventBehindAnEndingStep(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`flow: t
start: telegram.message
initial: a
vars: { n: 0 }
states:
  a:
    on:
      telegram.message:
        - when: event.text == "bye"
          goto: done
        - set: { n: vars.n + 1 }
  done: { final: true }
`), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHarnessOn(t, dir, dsn)
		ctx := context.Background()
		tg := func(key, text string) event.Event {
			return event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: key, Keys: []string{"telegram:1"},
				Text: text, Contact: event.Contact{Channel: "telegram", ID: "1"}, Data: map[string]any{}}
		}
		h.append(tg("m1", "hi"))
		h.settle()
		// All three are routed to the first dialog's lane before any is processed.
		h.append(tg("m2", "bye"), tg("m3", "again"), tg("m4", "more"))
		if err := h.p.RouteOnce(ctx); err != nil {
			t.Fatal(err)
		}
		h.p.Drain()
		h.settle()
		h.allProcessed()
		ds, _, err := h.st.ListDialogs(ctx, store.DialogFilter{}, store.Page{Limit: 10})
		if err != nil || len(ds) != 2 {
			t.Fatalf("dialogs %+v %v", ds, err)
		}
		byStatus := map[dialog.Status]store.Dialog{}
		for _, d := range ds {
			byStatus[d.Status] = d
		}
		if _, ok := byStatus[dialog.Finished]; !ok {
			t.Errorf("the first dialog did not finish: %+v", ds)
		}
		if d, ok := byStatus[dialog.Active]; !ok || d.Vars["n"] != 1.0 {
			t.Errorf("the second dialog (started by again, stepped by more): %+v", d)
		}
		if d, err := h.st.FindDialogByKeys(ctx, []string{"telegram:1"}); err != nil || d == nil || d.Status != dialog.Active {
			t.Errorf("the key's dialog: %+v %v", d, err)
		}
	})
}
