package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// monitoringDir holds the shipped alert rules and Grafana dashboard.
const monitoringDir = "../examples/monitoring"

// served returns every metric name a fully wired fixit serves, with its label names.
func served(t *testing.T) map[string][]string {
	t.Helper()
	m := New(func(context.Context) ([]DialogCount, error) { return nil, nil })
	m.WatchBacklog(func(context.Context) (Backlog, error) { return Backlog{}, nil }, time.Now)
	fq := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	names := map[string][]string{}
	for _, c := range m.collectors {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			sub := fq.FindStringSubmatch(d.String())
			if sub == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			var labels []string
			for _, l := range strings.Split(sub[2], ",") {
				if l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l), "c("), ")"); l != "" {
					labels = append(labels, l)
				}
			}
			names[sub[1]] = labels
		}
	}
	return names
}

// usedMetric is a metric name in a query, with the labels its selector matches on.
var usedMetric = regexp.MustCompile(`\b((?:fixit|go|process)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)

// matcherLabel is the label name of one matcher inside a selector's braces.
var matcherLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)

// checkQuery returns a problem for every metric or selector label in q that served
// does not have. A histogram's series (_bucket, _sum, _count) count as its name.
func checkQuery(served map[string][]string, q string) []string {
	var problems []string
	for _, m := range usedMetric.FindAllStringSubmatch(q, -1) {
		name := m[1]
		labels, ok := served[name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, cut := strings.CutSuffix(name, suffix); !ok && cut {
				labels, ok = served[base]
				if suffix == "_bucket" {
					labels = append(slices.Clone(labels), "le")
				}
			}
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("no metric %s", name))
			continue
		}
		for _, l := range matcherLabel.FindAllStringSubmatch(m[2], -1) {
			if l[1] != "instance" && l[1] != "job" && !slices.Contains(labels, l[1]) {
				problems = append(problems, fmt.Sprintf("%s has no label %s (it has %v)", name, l[1], labels))
			}
		}
	}
	return problems
}

func TestCheckQueryFindsUnknownNames(t *testing.T) {
	names := served(t)
	cases := []struct {
		q    string
		want int
	}{
		{`rate(fixit_webhook_requests_total{status="401"}[5m])`, 0},
		{`histogram_quantile(0.99, sum by (le) (rate(fixit_event_processing_seconds_bucket[5m])))`, 0},
		{`fixit_inbox_pending > 0 and fixit_outbox_items{status="dead"} > 0`, 0},
		{`fixit_inbox_backlog > 0`, 1},
		{`fixit_outbox_items{state="dead"}`, 1},
		{`rate(fixit_events_in_totl[5m]) + go_gorutines`, 2},
	}
	for _, c := range cases {
		if got := checkQuery(names, c.q); len(got) != c.want {
			t.Errorf("%s: %d problems %v, want %d", c.q, len(got), got, c.want)
		}
	}
}

// TestAlertRulesUseServedMetrics: every metric and label the shipped alert rules
// name (in expressions and annotations) is one fixit serves, and every rule has
// what Prometheus and a reader need.
func TestAlertRulesUseServedMetrics(t *testing.T) {
	names := served(t)
	b, err := os.ReadFile(filepath.Join(monitoringDir, "fixit-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("fixit-alerts.yml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q lacks alert, expr, a severity label or a summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for: %v", r.Alert, err)
				}
			}
			alerts[r.Alert] = true
			texts := []string{r.Expr}
			for _, a := range r.Annotations {
				texts = append(texts, a)
			}
			for _, q := range texts {
				for _, p := range checkQuery(names, q) {
					t.Errorf("rule %s: %s", r.Alert, p)
				}
			}
		}
	}
	// The rules an operator was promised: backlog age, dead actions, refused
	// reloads, refused webhooks.
	for _, a := range []string{"FixitInboxBacklogOld", "FixitDeadActions", "FixitFlowReloadFailed", "FixitWebhookUnauthorized"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
}

// TestDashboardUsesServedMetrics: every query of the Grafana dashboard (panels and
// template variables) names only metrics and labels fixit serves.
func TestDashboardUsesServedMetrics(t *testing.T) {
	names := served(t)
	b, err := os.ReadFile(filepath.Join(monitoringDir, "fixit-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("fixit-dashboard.json: %v", err)
	}
	var queries []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && (k == "expr" || k == "definition") {
					queries = append(queries, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	if len(queries) < 20 {
		t.Fatalf("only %d queries found in the dashboard", len(queries))
	}
	used := map[string]bool{}
	for _, q := range queries {
		for _, p := range checkQuery(names, q) {
			t.Errorf("dashboard query %q: %s", q, p)
		}
		for _, m := range usedMetric.FindAllStringSubmatch(q, -1) {
			used[m[1]] = true
		}
	}
	for _, want := range []string{"fixit_inbox_pending", "fixit_inbox_oldest_age_seconds", "fixit_outbox_items", "fixit_timers_due", "fixit_writer_busy_seconds_total"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
