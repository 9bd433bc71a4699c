package processor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/fixit-exchange/fixit/engine/store"
)

// failingRoutes is a store whose next RouteKeys calls fail while fail > 0.
type failingRoutes struct {
	store.Store
	fail atomic.Int64
}

func (f *failingRoutes) RouteKeys(ctx context.Context, keys []string) (*store.DialogRoute, error) {
	if f.fail.Add(-1) >= 0 {
		return nil, errors.New("database away")
	}
	return f.Store.RouteKeys(ctx, keys)
}

// TestRouteErrorKeepsTheEvent: an event whose dialog could not be looked up is not
// handed out and not passed: the router's cursor and seen stay before it, and the
// next look routes it.
func TestRouteErrorKeepsTheEvent(t *testing.T) {
	h, fs := newWrapped(t, "../../flows.d", func(st store.Store) *failingRoutes { return &failingRoutes{Store: st} })
	ctx := context.Background()
	h.append(h.wa("Здравствуйте"))
	fs.fail.Store(1)
	if err := h.p.RouteOnce(ctx); err == nil {
		t.Fatal("a failed look-up was not reported")
	}
	h.p.Drain()
	if c, s := h.p.router.cursor, h.p.router.seen.Load(); c != 0 || s != 0 {
		t.Fatalf("after a failed look-up: cursor %d, seen %d; want 0, 0", c, s)
	}
	h.settle()
	h.allProcessed()
	if d := h.dialog(); d.Flow != "simple_lead" {
		t.Errorf("dialog of flow %s", d.Flow)
	}
}
