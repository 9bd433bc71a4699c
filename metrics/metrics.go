// Package metrics defines fixit's Prometheus collectors on an explicit registry
// (no global state): the server counts what comes in, the processor what it does.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DialogCount is one (flow, state, status) group of dialogs.
type DialogCount struct {
	Flow, State, Status string
	Count               int64
}

// Metrics holds every collector.
type Metrics struct {
	Registry *prometheus.Registry

	// EventsIn counts inbound events by source, type and result
	// (stored, duplicate, rejected).
	EventsIn *prometheus.CounterVec
	// Requests counts webhook requests by endpoint and HTTP status.
	Requests *prometheus.CounterVec
	// DedupeHits counts deliveries acknowledged as duplicates, by source.
	DedupeHits *prometheus.CounterVec
	// Processed counts processed events by source and outcome (processed, unrouted, failed).
	Processed *prometheus.CounterVec
	// ProcessingSeconds observes the time from receipt to the end of processing.
	ProcessingSeconds *prometheus.HistogramVec
	// OutboxAttempts counts outbound attempts by connector and result
	// (done, dry_run, retry, failed, dead).
	OutboxAttempts *prometheus.CounterVec
	// Reloads counts flow reloads by result (ok, error, unchanged).
	Reloads *prometheus.CounterVec
	// InboxBatch observes how many events one inbox transaction stored.
	InboxBatch prometheus.Histogram
	// StepBatch observes how many writes (steps) one SQLite transaction committed.
	StepBatch prometheus.Histogram
}

// New returns the collectors registered on a new registry. counts, when not nil,
// is asked for the dialogs per flow/state/status at each scrape.
func New(counts func(context.Context) ([]DialogCount, error)) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		EventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_events_in_total",
			Help: "Inbound events by source, type and result (stored, duplicate, rejected)."}, []string{"source", "type", "result"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_webhook_requests_total",
			Help: "Webhook requests by endpoint and HTTP status."}, []string{"endpoint", "status"}),
		DedupeHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_dedupe_hits_total",
			Help: "Events acknowledged as duplicates of an already stored event."}, []string{"source"}),
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_events_processed_total",
			Help: "Processed events by source and outcome (processed, unrouted, failed)."}, []string{"source", "outcome"}),
		ProcessingSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fixit_event_processing_seconds",
			Help:    "Time from an event's receipt to the end of its processing.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"source"}),
		OutboxAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_outbox_attempts_total",
			Help: "Outbound action attempts by connector and result (done, dry_run, retry, failed, dead)."}, []string{"connector", "result"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_flows_reload_total",
			Help: "Flow (re)loads by result (ok, error, unchanged)."}, []string{"result"}),
		InboxBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fixit_inbox_batch_events",
			Help: "Events stored per inbox transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		StepBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fixit_step_batch_steps",
			Help: "Writes committed per SQLite transaction by the writer: dialog steps, action outcomes and outbox claims, or inbox appends.", Buckets: prometheus.ExponentialBuckets(1, 2, 8)}),
	}
	r.MustRegister(m.EventsIn, m.Requests, m.DedupeHits, m.Processed, m.ProcessingSeconds, m.OutboxAttempts, m.Reloads, m.InboxBatch, m.StepBatch,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if counts != nil {
		r.MustRegister(&dialogCollector{counts: counts, desc: prometheus.NewDesc("fixit_dialogs",
			"Dialogs by flow, state and status.", []string{"flow", "state", "status"}, nil)})
	}
	return m
}

type dialogCollector struct {
	counts func(context.Context) ([]DialogCount, error)
	desc   *prometheus.Desc
}

func (c *dialogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *dialogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(r.Count), r.Flow, r.State, r.Status)
	}
}
