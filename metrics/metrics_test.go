package metrics

import (
	"context"
	"errors"
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
	cases := []struct {
		name    string
		backlog Backlog
		want    string
	}{
		{"empty", Backlog{}, `
# HELP fixit_inbox_oldest_age_seconds Age of the oldest inbound event not yet processed; 0 when none waits.
# TYPE fixit_inbox_oldest_age_seconds gauge
fixit_inbox_oldest_age_seconds 0
# HELP fixit_inbox_pending Stored inbound events not yet processed.
# TYPE fixit_inbox_pending gauge
fixit_inbox_pending 0
# HELP fixit_outbox_items Outbound actions by status: pending (waiting for a try), running, failed (refused for good), dead (retries ran out).
# TYPE fixit_outbox_items gauge
fixit_outbox_items{status="dead"} 0
fixit_outbox_items{status="failed"} 0
fixit_outbox_items{status="pending"} 0
fixit_outbox_items{status="running"} 0
# HELP fixit_timers_due Pending timers whose time has come and that have not fired yet.
# TYPE fixit_timers_due gauge
fixit_timers_due 0
`},
		{"busy", Backlog{InboxPending: 12, InboxOldest: now.Add(-90 * time.Second), Outbox: map[string]int64{"pending": 5, "dead": 2}, TimersDue: 3}, `
# HELP fixit_inbox_oldest_age_seconds Age of the oldest inbound event not yet processed; 0 when none waits.
# TYPE fixit_inbox_oldest_age_seconds gauge
fixit_inbox_oldest_age_seconds 90
# HELP fixit_inbox_pending Stored inbound events not yet processed.
# TYPE fixit_inbox_pending gauge
fixit_inbox_pending 12
# HELP fixit_outbox_items Outbound actions by status: pending (waiting for a try), running, failed (refused for good), dead (retries ran out).
# TYPE fixit_outbox_items gauge
fixit_outbox_items{status="dead"} 2
fixit_outbox_items{status="failed"} 0
fixit_outbox_items{status="pending"} 5
fixit_outbox_items{status="running"} 0
# HELP fixit_timers_due Pending timers whose time has come and that have not fired yet.
# TYPE fixit_timers_due gauge
fixit_timers_due 3
`},
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
