package processor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
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
		h := newHarnessOn(t, "testdata/alongside", dsn)
		ctx := context.Background()
		st2, err := store.Open(ctx, h.dsn, slog.New(slog.DiscardHandler), store.WithClock(h.clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		p2 := New(Config{Store: st2, Flows: h.flows, Registry: connectors.NewRegistry(), Now: h.clk.Now, Poll: 10 * time.Millisecond})
		defer p2.Inbox().Close()
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
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, p := range []*Processor{h.p, p2} {
			wg.Add(1)
			go func(p *Processor) { defer wg.Done(); _ = p.Run(runCtx) }(p)
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			pending, _ := h.st.PendingEvents(ctx, 0, 1)
			if len(pending) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		wg.Wait()

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
