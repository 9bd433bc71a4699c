package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

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
