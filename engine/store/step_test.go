package store

import (
	"context"
	"testing"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// TestAnyEventFor: in a range of stored events, one addressed to the dialog or
// carrying one of its keys is found; others are not, whatever their keys look
// like to LIKE (its wildcards in a key match only themselves).
func TestAnyEventFor(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn, &fakeClock{now: t0})
		ctx := context.Background()
		evs := []event.Event{
			{Source: "waba", Type: "waba.message", DedupeKey: "1", Keys: []string{"waba:79160000001", "phone:79160000001"}},
			{Source: "okdesk", Type: "okdesk.new_comment", DedupeKey: "2", Keys: []string{"okdesk:issue:1_42"}},
			{Source: "action", Type: "action.done", DedupeKey: "3", Keys: []string{}, Data: map[string]any{"dialog_id": "8"}},
			{Source: "timer", Type: "timer", DedupeKey: "4", Keys: []string{}, Data: map[string]any{"dialog_id": "7"}},
			{Source: "waba", Type: "waba.message", DedupeKey: "5", Keys: []string{`odd:%"\`}},
		}
		res, err := s.AppendEvents(ctx, evs)
		if err != nil {
			t.Fatal(err)
		}
		first, last := res[0].Seq, res[len(res)-1].Seq
		tests := []struct {
			name          string
			after, before int64
			dialog        int64
			keys          []string
			want          bool
		}{
			{"a key of the dialog", first - 1, last + 1, 1, []string{"phone:79160000001"}, true},
			{"no key of the dialog", first - 1, last + 1, 1, []string{"phone:79160000009"}, false},
			{"a key that is a prefix of another", first - 1, last + 1, 1, []string{"phone:7916000000"}, false},
			{"_ matches only itself", first - 1, last + 1, 1, []string{"okdesk:issue:1542"}, false},
			{"a key with _", first - 1, last + 1, 1, []string{"okdesk:issue:1_42"}, true},
			{"% and a quote match only themselves", first - 1, last + 1, 1, []string{`odd:%"\`}, true},
			{"addressed to the dialog", first - 1, last + 1, 7, nil, true},
			{"addressed to another dialog", first - 1, last + 1, 9, nil, false},
			{"outside the range", first, first + 1, 7, []string{"phone:79160000001"}, false},
			{"an empty range", first, first + 1, 1, nil, false},
		}
		for _, tc := range tests {
			var got bool
			if err := s.Step(ctx, func(tx StepTx) error {
				var err error
				got, err = tx.AnyEventFor(tc.after, tc.before, tc.dialog, tc.keys)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}
