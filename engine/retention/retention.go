package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/metrics"
)

// MinKeep is the shortest retention accepted. A purged event's dedupe key is
// forgotten with it, so a webhook sender that retried a delivery after that would
// have it processed again; senders retry for hours to days.
const MinKeep = 7 * 24 * time.Hour

// ParseKeep reads a retention such as FIXIT_RETENTION's: a whole number of days
// ("90d") or weeks ("12w"), or a Go duration ("2160h"); at least MinKeep.
func ParseKeep(s string) (time.Duration, error) {
	d, err := parseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("retention %q: %w", s, err)
	}
	if d < MinKeep {
		return 0, fmt.Errorf("retention %q: at least 7 days (webhook senders retry deliveries for days, and a purged event's dedupe key is forgotten)", s)
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	const day = 24 * time.Hour
	for _, u := range []struct {
		suffix string
		per    time.Duration
	}{{"d", day}, {"w", 7 * day}} {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 63)
		if err != nil || n > uint64(math.MaxInt64/u.per) {
			return 0, errors.New("want a whole number of days (90d) or weeks (12w)")
		}
		return time.Duration(n) * u.per, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want days (90d), weeks (12w) or hours (2160h)")
	}
	return d, nil
}

// Store is what the purge needs of the store ([store.GormStore] has it).
type Store interface {
	EndedDialogs(ctx context.Context, cutoff time.Time, limit int) ([]int64, error)
	PurgeDialogs(ctx context.Context, ids []int64, cutoff time.Time) (store.Purged, error)
	PurgeUnattached(ctx context.Context, cutoff time.Time, limit int) (store.Purged, error)
}

// Config configures a Purger. Zero values get the documented defaults.
type Config struct {
	// Store is purged. Required.
	Store Store
	// Keep is the retention: what ended or settled longer ago than Keep is purged.
	// Required (see ParseKeep).
	Keep time.Duration
	// Every is the time between passes (default 1h). The first pass starts at Run.
	Every time.Duration
	// Batch is how many dialogs one transaction purges (default 50); rows of no
	// dialog go 10 times as many per transaction.
	Batch int
	// Rest is the least time between two transactions (default 20ms). The purge
	// also rests three times as long as its last transaction took, so it never
	// holds the database more than a quarter of the time.
	Rest time.Duration
	// Busy, when set, reports that intake is under pressure (webhooks wait for
	// their commit); the purge then rests up to 20 times longer before its next
	// transaction.
	Busy func() bool
	// RemoveFiles, when set, removes the contents of the files whose rows a purge
	// transaction deleted (paths relative to the file store's folder,
	// files.Store.Remove); an error is logged and the pass goes on.
	RemoveFiles func(paths []string) (int, error)
	// Metrics counts what was purged (fixit_retention_purged_total); may be nil.
	Metrics *metrics.Metrics
	// Logger receives one line per pass that purged something, and errors.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Purger runs the retention purge. Build it with New.
type Purger struct {
	cfg Config
	log *slog.Logger
}

// New returns a Purger, or an error when Store or Keep is missing.
func New(cfg Config) (*Purger, error) {
	if cfg.Store == nil {
		return nil, errors.New("retention: no store")
	}
	if cfg.Keep <= 0 {
		return nil, errors.New("retention: no retention period")
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Rest <= 0 {
		cfg.Rest = 20 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Purger{cfg: cfg, log: cfg.Logger}, nil
}

// Run purges once at start and then every Config.Every until ctx ends. A pass that
// fails is logged and tried again at the next.
func (p *Purger) Run(ctx context.Context) {
	p.log.Info("retention purge on", "keep", p.cfg.Keep.String(), "every", p.cfg.Every.String())
	tick := time.NewTicker(p.cfg.Every)
	defer tick.Stop()
	for {
		if _, err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("retention purge failed; the next pass tries again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Pass purges everything due now, batch by batch, and reports what it removed
// (also when it stops early on an error or the end of ctx).
func (p *Purger) Pass(ctx context.Context) (store.Purged, error) {
	cutoff := p.cfg.Now().Add(-p.cfg.Keep)
	var total store.Purged
	defer func() {
		if total.Total() > 0 {
			attrs := []any{"cutoff", cutoff.UTC().Format(time.RFC3339)}
			for _, k := range total.Kinds() {
				attrs = append(attrs, k.Kind, k.Count)
			}
			p.log.Info("retention purge", attrs...)
		}
	}()
	count := func(q store.Purged) {
		if len(q.FilePaths) > 0 && p.cfg.RemoveFiles != nil {
			if _, err := p.cfg.RemoveFiles(q.FilePaths); err != nil {
				p.log.Error("retention: remove the contents of purged files", "files", len(q.FilePaths), "err", err)
			}
		}
		q.FilePaths = nil
		total.Add(q)
		if p.cfg.Metrics != nil {
			for _, k := range q.Kinds() {
				if k.Count > 0 {
					p.cfg.Metrics.RetentionPurged.WithLabelValues(k.Kind).Add(float64(k.Count))
				}
			}
		}
	}
	for {
		ids, err := p.cfg.Store.EndedDialogs(ctx, cutoff, p.cfg.Batch)
		if err != nil {
			return total, err
		}
		if len(ids) == 0 {
			break
		}
		start := time.Now()
		q, err := p.cfg.Store.PurgeDialogs(ctx, ids, cutoff)
		if err != nil {
			return total, err
		}
		count(q)
		if q.Dialogs == 0 {
			// They stopped qualifying between the read and the transaction (only
			// possible when something changed them); the next pass sees them anew.
			break
		}
		if err := p.rest(ctx, time.Since(start)); err != nil {
			return total, err
		}
	}
	limit := 10 * p.cfg.Batch
	for {
		start := time.Now()
		q, err := p.cfg.Store.PurgeUnattached(ctx, cutoff, limit)
		if err != nil {
			return total, err
		}
		count(q)
		if q.Events < int64(limit) && q.Outbox < int64(limit) && q.Contacts < int64(limit) {
			return total, nil
		}
		if err := p.rest(ctx, time.Since(start)); err != nil {
			return total, err
		}
	}
}

// rest waits between two transactions: at least Config.Rest and three times as
// long as the last one took; while Config.Busy holds, up to 20 times that.
func (p *Purger) rest(ctx context.Context, took time.Duration) error {
	d := max(p.cfg.Rest, 3*took)
	for i := 0; ; i++ {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if p.cfg.Busy == nil || i >= 19 || !p.cfg.Busy() {
			return nil
		}
	}
}
