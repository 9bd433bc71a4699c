package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDialogGauge(t *testing.T) {
	m := New(func(context.Context) ([]DialogCount, error) {
		return []DialogCount{{Flow: "simple_lead", State: "ask_name", Status: "active", Count: 3}}, nil
	})
	want := `
# HELP fixit_dialogs Dialogs by flow, state and status.
# TYPE fixit_dialogs gauge
fixit_dialogs{flow="simple_lead",state="ask_name",status="active"} 3
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "fixit_dialogs"); err != nil {
		t.Error(err)
	}
	m.Reloads.WithLabelValues("ok").Inc()
	if got := testutil.ToFloat64(m.Reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("reloads = %v", got)
	}
}

func TestDialogGaugeError(t *testing.T) {
	m := New(func(context.Context) ([]DialogCount, error) { return nil, errors.New("db down") })
	if _, err := m.Registry.Gather(); err == nil || !strings.Contains(err.Error(), "db down") {
		t.Errorf("a failing count must surface at scrape: %v", err)
	}
}

func TestBacklogGauges(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	// want is the exposition of the four gauges with these values.
	want := func(age float64, pending, dead, failed, waiting, running, timers int) string {
		return fmt.Sprintf(`
# HELP fixit_inbox_oldest_age_seconds Age of the oldest inbound event not yet processed; 0 when none waits.
# TYPE fixit_inbox_oldest_age_seconds gauge
fixit_inbox_oldest_age_seconds %v
# HELP fixit_inbox_pending Stored inbound events not yet processed.
# TYPE fixit_inbox_pending gauge
fixit_inbox_pending %d
# HELP fixit_outbox_items Outbound actions by status: pending (waiting for a try), running, failed (refused for good), dead (retries ran out).
# TYPE fixit_outbox_items gauge
fixit_outbox_items{status="dead"} %d
fixit_outbox_items{status="failed"} %d
fixit_outbox_items{status="pending"} %d
fixit_outbox_items{status="running"} %d
# HELP fixit_timers_due Pending timers whose time has come and that have not fired yet.
# TYPE fixit_timers_due gauge
fixit_timers_due %d
`, age, pending, dead, failed, waiting, running, timers)
	}
	cases := []struct {
		name    string
		backlog Backlog
		want    string
	}{
		{"empty", Backlog{}, want(0, 0, 0, 0, 0, 0, 0)},
		{"busy", Backlog{InboxPending: 12, InboxOldest: now.Add(-90 * time.Second), Outbox: map[string]int64{"pending": 5, "dead": 2}, TimersDue: 3},
			want(90, 12, 2, 0, 5, 0, 3)},
		{"clock behind the database", Backlog{InboxPending: 1, InboxOldest: now.Add(time.Second)}, want(0, 1, 0, 0, 0, 0, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := New(nil)
			m.WatchBacklog(func(context.Context) (Backlog, error) { return c.backlog, nil }, func() time.Time { return now })
			if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(c.want),
				"fixit_inbox_pending", "fixit_inbox_oldest_age_seconds", "fixit_outbox_items", "fixit_timers_due"); err != nil {
				t.Error(err)
			}
		})
	}
	m := New(nil)
	m.WatchBacklog(func(context.Context) (Backlog, error) { return Backlog{}, errors.New("db down") }, time.Now)
	if _, err := m.Registry.Gather(); err == nil || !strings.Contains(err.Error(), "db down") {
		t.Errorf("a failing backlog read must surface at scrape: %v", err)
	}
}
