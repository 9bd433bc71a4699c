package processor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// TestAlongsideEachDeliveryOnce runs two processors on one database, as two
// replicas would, over events that each go to two dialogs (an ordinary flow's and
// an alongside flow's): every (event, dialog) is applied exactly once, recorded
// once, and each dialog sees its events in arrival order.
func TestAlongsideEachDeliveryOnce(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newSharedHarness(t, "testdata/alongside", dsn)
		ctx := context.Background()
		const convs, n = 3, 24
		comments := 0
		for c := range convs {
			contact := event.Contact{Channel: "telegram", ID: fmt.Sprint(c)}
			chat := fmt.Sprintf("telegram:%d", c)
			h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: fmt.Sprintf("tg:%d:start", c),
				Keys: []string{chat}, Contact: contact, Data: map[string]any{}})
		}
		for i := range n {
			for c := range convs {
				chat := fmt.Sprintf("telegram:%d", c)
				if i%3 == 0 {
					h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: fmt.Sprintf("tg:%d:%d", c, i),
						Keys: []string{chat}, Contact: event.Contact{Channel: "telegram", ID: fmt.Sprint(c)}, Data: map[string]any{}})
					continue
				}
				comments++
				h.append(event.Event{Source: "okdesk", Type: "okdesk.new_comment", DedupeKey: fmt.Sprintf("ok:%d:%d", c, i),
					Keys: []string{fmt.Sprintf("okdesk:issue:%d", c), chat}, Data: map[string]any{}})
			}
		}
		h.runWithReplica(90 * time.Second)

		ds, _, err := h.st.ListDialogs(ctx, store.DialogFilter{}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		byFlow := map[string]int{}
		for _, d := range ds {
			byFlow[d.Flow]++
			// counter: every message after the first and every comment; tally: every
			// comment after the one that started it.
			want := n
			if d.Flow == "tally" {
				want = comments/convs - 1
			}
			if d.Vars["count"] != float64(want) {
				t.Errorf("dialog %d (%s): count %v, want %d", d.ID, d.Flow, d.Vars["count"], want)
			}
			hist, err := h.st.DialogHistory(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			var last int64
			for _, e := range hist {
				if e.EventSeq == nil {
					continue
				}
				if *e.EventSeq < last {
					t.Errorf("dialog %d (%s): event %d after event %d", d.ID, d.Flow, *e.EventSeq, last)
				}
				last = *e.EventSeq
			}
		}
		if byFlow["counter"] != convs || byFlow["tally"] != convs {
			t.Fatalf("dialogs by flow %v, want %d of each", byFlow, convs)
		}
		evs, _, err := h.st.ListEvents(ctx, store.EventFilter{Source: "okdesk"}, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != comments {
			t.Fatalf("%d comment events, want %d", len(evs), comments)
		}
		for _, e := range evs {
			if e.Status != store.EventProcessed || len(e.Deliveries) != 2 || e.Deliveries[0].DialogID == e.Deliveries[1].DialogID {
				t.Errorf("event %d: %s, deliveries %+v", e.Seq, e.Status, e.Deliveries)
			}
		}
	})
}

// TestAlongsideRedrive: an event that failed in the alongside dialog only is
// failed; re-driven after the flow is fixed, it goes to that dialog again and
// not to the ordinary one, which had processed it.
func TestAlongsideRedrive(t *testing.T) {
	dir := copyFlows(t, "counter.yaml")
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const tally = `flow: tally
start: { on: okdesk.new_comment, alongside: true }
initial: counting
vars: { count: 0 }
migrate: {}
states:
  counting:
    on:
      okdesk.new_comment:
        - set: { count: 'vars.count + %s' }
`
	write("tally.yaml", fmt.Sprintf(tally, "1"))
	h := newHarness(t, dir)
	ctx := context.Background()
	comment := func(i int) event.Event {
		return event.Event{Source: "okdesk", Type: "okdesk.new_comment", DedupeKey: fmt.Sprintf("ok:%d", i),
			Keys: []string{"okdesk:issue:1", "telegram:1"}, Text: "x", Data: map[string]any{}}
	}
	h.append(event.Event{Source: "telegram", Type: "telegram.message", DedupeKey: "tg:1", Keys: []string{"telegram:1"},
		Contact: event.Contact{Channel: "telegram", ID: "1"}, Data: map[string]any{}})
	h.append(comment(1)) // starts the tally beside the counter
	h.settle()
	write("tally.yaml", fmt.Sprintf(tally, "int(event.text)")) // "x" is no number: the step fails
	if r := h.p.Reload(ctx, false); r.Result != engine.ReloadOK {
		t.Fatalf("reload: %+v", r)
	}
	seq := h.append(comment(2))[0].Seq
	h.settle()
	ev, err := h.st.GetEvent(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Status != store.EventFailed || !strings.Contains(ev.Error, "flow tally") {
		t.Fatalf("event: %s %q", ev.Status, ev.Error)
	}
	write("tally.yaml", fmt.Sprintf(tally, "10"))
	if r := h.p.Reload(ctx, false); r.Result != engine.ReloadOK {
		t.Fatalf("reload: %+v", r)
	}
	if _, err := h.p.Redrive(ctx, seq, "ops"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	counts := map[string]any{}
	ds, _, err := h.st.ListDialogs(ctx, store.DialogFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		counts[d.Flow] = d.Vars["count"]
	}
	// counter: the two comments once each; tally: started by the first, 10 for the
	// re-driven second.
	if counts["counter"] != float64(2) || counts["tally"] != float64(10) {
		t.Errorf("counts %v, want counter 2 and tally 10", counts)
	}
	ev, _ = h.st.GetEvent(ctx, seq)
	dels, _ := h.st.EventDeliveries(ctx, seq)
	if ev.Status != store.EventProcessed || len(dels) != 2 || dels[0].Status != store.EventProcessed || dels[1].Status != store.EventProcessed {
		t.Errorf("after the re-drive: %s %+v", ev.Status, dels)
	}
	if _, err := h.p.Redrive(ctx, seq, "ops"); err == nil {
		t.Error("a processed event was re-driven")
	}
}

// TestAlongsideFlipRefused: a reload whose `migrate` would move live dialogs to a
// version that changes `alongside` is refused (their keys are in the other scope).
func TestAlongsideFlipRefused(t *testing.T) {
	dir := copyFlows(t, "counter.yaml", "tally.yaml")
	h := newHarness(t, dir)
	h.append(event.Event{Source: "okdesk", Type: "okdesk.new_comment", DedupeKey: "ok:1", Keys: []string{"okdesk:issue:1"}, Data: map[string]any{}})
	h.settle()
	const ordinary = `flow: tally
start: { on: okdesk.new_comment }
initial: counting
vars: { count: 0 }
migrate: {}
states:
  counting:
    on:
      okdesk.new_comment:
        - set: { count: vars.count + 1 }
`
	if err := os.WriteFile(filepath.Join(dir, "tally.yaml"), []byte(ordinary), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.p.Reload(context.Background(), false)
	if r.Result != engine.ReloadError || len(r.Diagnostics) == 0 || r.Diagnostics[0].Code != engine.CodeStrandedDialogs ||
		!strings.Contains(r.Diagnostics[0].Message, "alongside") {
		t.Fatalf("reload: %+v", r)
	}
	// Without migrate the dialog stays on its version: accepted.
	if err := os.WriteFile(filepath.Join(dir, "tally.yaml"), []byte(strings.Replace(ordinary, "migrate: {}\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := h.p.Reload(context.Background(), false); r.Result != engine.ReloadOK {
		t.Fatalf("reload without migrate: %+v", r)
	}
}

// copyFlows copies flow files of testdata/alongside to a temporary folder, which
// the test may change.
func copyFlows(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range names {
		data, err := os.ReadFile(filepath.Join("testdata/alongside", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
