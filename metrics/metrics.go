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
	// WriterBusy counts the seconds the single writer (SQLite) spent in its
	// transactions; its rate is the fraction of the time the writer is busy.
	WriterBusy prometheus.Counter
	// RetentionPurged counts the rows the retention purge removed, by kind (dialogs,
	// events, history, outbox, timers, keys, contacts).
	RetentionPurged *prometheus.CounterVec

	// collectors is everything registered, for the tests that check the names used
	// by the shipped alert rules and dashboard.
	collectors []prometheus.Collector
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
		WriterBusy: prometheus.NewCounter(prometheus.CounterOpts{Name: "fixit_writer_busy_seconds_total",
			Help: "Seconds the single writer (SQLite) spent committing; its rate is the writer's busy ratio (1 = saturated). Stays 0 on PostgreSQL, where steps commit in parallel."}),
		RetentionPurged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fixit_retention_purged_total",
			Help: "Rows removed by the retention purge (FIXIT_RETENTION), by kind: dialogs, events, history, outbox, timers, keys, contacts."}, []string{"kind"}),
	}
	m.register(m.EventsIn, m.Requests, m.DedupeHits, m.Processed, m.ProcessingSeconds, m.OutboxAttempts, m.Reloads, m.InboxBatch, m.StepBatch,
		m.WriterBusy, m.RetentionPurged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if counts != nil {
		m.register(&dialogCollector{counts: counts, desc: prometheus.NewDesc("fixit_dialogs",
			"Dialogs by flow, state and status.", []string{"flow", "state", "status"}, nil)})
	}
	return m
}

func (m *Metrics) register(cs ...prometheus.Collector) {
	m.Registry.MustRegister(cs...)
	m.collectors = append(m.collectors, cs...)
}

// Backlog is the work waiting in the database at one moment.
type Backlog struct {
	// InboxPending counts stored events not yet processed.
	InboxPending int64
	// InboxOldest is when the oldest of them was received; zero when none waits.
	InboxOldest time.Time
	// Outbox counts outbound actions by status; done ones are left out (they only
	// grow; fixit_outbox_attempts_total counts them).
	Outbox map[string]int64
	// TimersDue counts pending timers whose time has come.
	TimersDue int64
}

// OutboxBacklogStatuses are the statuses fixit_outbox_items reports, each always
// present (0 when no action has it).
var OutboxBacklogStatuses = []string{"pending", "running", "failed", "dead"}

// WatchBacklog registers the backlog gauges, read from backlog at each scrape:
// fixit_inbox_pending, fixit_inbox_oldest_age_seconds (measured against now),
// fixit_outbox_items{status} and fixit_timers_due.
func (m *Metrics) WatchBacklog(backlog func(context.Context) (Backlog, error), now func() time.Time) {
	m.register(&backlogCollector{backlog: backlog, now: now,
		pending: prometheus.NewDesc("fixit_inbox_pending",
			"Stored inbound events not yet processed.", nil, nil),
		oldest: prometheus.NewDesc("fixit_inbox_oldest_age_seconds",
			"Age of the oldest inbound event not yet processed; 0 when none waits.", nil, nil),
		outbox: prometheus.NewDesc("fixit_outbox_items",
			"Outbound actions by status: pending (waiting for a try), running, failed (refused for good), dead (retries ran out).", []string{"status"}, nil),
		timers: prometheus.NewDesc("fixit_timers_due",
			"Pending timers whose time has come and that have not fired yet.", nil, nil),
	})
}

type backlogCollector struct {
	backlog                         func(context.Context) (Backlog, error)
	now                             func() time.Time
	pending, oldest, outbox, timers *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
	ch <- c.outbox
	ch <- c.timers
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := c.backlog(ctx)
	if err != nil {
		for _, d := range []*prometheus.Desc{c.pending, c.oldest, c.outbox, c.timers} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	age := 0.0
	if !b.InboxOldest.IsZero() {
		age = max(c.now().Sub(b.InboxOldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(b.InboxPending))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	for _, st := range OutboxBacklogStatuses {
		ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(b.Outbox[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(c.timers, prometheus.GaugeValue, float64(b.TimersDue))
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
