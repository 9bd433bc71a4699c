package processor

import (
	"context"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// TestLostClaimFinishesNothing: an action whose lease ran out while its first
// worker still ran is claimed again; the first worker's outcome, recorded late,
// must not overwrite the second's: only the claim the item runs under finishes it.
func TestLostClaimFinishesNothing(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		h := newHarnessOn(t, "../../flows.d", dsn)
		ctx := context.Background()
		h.append(h.wa("Здравствуйте"))
		if err := h.p.RouteOnce(ctx); err != nil {
			t.Fatal(err)
		}
		h.p.Drain()
		first, err := h.p.outbox.claim(ctx, 10)
		if err != nil || len(first) != 1 {
			t.Fatalf("first claim: %v %v", first, err)
		}
		h.clk.Advance(h.p.cfg.Lease + time.Second)
		second, err := h.p.outbox.claim(ctx, 10)
		if err != nil || len(second) != 1 || second[0].ID != first[0].ID || second[0].Attempts != first[0].Attempts+1 {
			t.Fatalf("second claim: %+v (first %+v) %v", second, first, err)
		}
		item := func() store.OutboxItem {
			items, _, err := h.st.ListOutbox(ctx, store.OutboxFilter{}, store.Page{Limit: 10})
			if err != nil || len(items) != 1 {
				t.Fatalf("outbox: %v %v", items, err)
			}
			return items[0]
		}
		// The first worker's call failed for good, and it records that late.
		h.p.outbox.record(ctx, h.p.core.Settle(first[0], nil, connectors.Result{},
			connectors.HTTPError("waba", 400, 0, "no")))
		if it := item(); it.Status != store.OutboxRunning || it.Attempts != second[0].Attempts {
			t.Fatalf("after the lost claim's outcome: %s attempt %d, want running attempt %d", it.Status, it.Attempts, second[0].Attempts)
		}
		h.p.outbox.record(ctx, h.p.core.Settle(second[0], nil, connectors.Result{Data: map[string]any{"id": "wamid.2"}}, nil))
		if it := item(); it.Status != store.OutboxDone {
			t.Fatalf("after the claim's own outcome: %s", it.Status)
		}
		evs, _, err := h.st.ListEvents(ctx, store.EventFilter{}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var results []string
		for _, e := range evs {
			if e.Type == event.TypeActionDone || e.Type == event.TypeActionFailed {
				results = append(results, e.Type)
			}
		}
		if len(results) != 1 || results[0] != event.TypeActionDone {
			t.Errorf("result events %v, want one %s", results, event.TypeActionDone)
		}
	})
}
