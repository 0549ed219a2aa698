package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/migrations"
)

// Latency is figure C: commit → applied latency per consumer at a fixed
// order rate. For every inbox row whose source transaction committed in the
// measured window: the commit timestamp of the consumer's apply transaction
// (pg_xact_commit_timestamp of the row's xmin, track_commit_timestamp on)
// minus the source's commit time that the relay carried from pgoutput in
// the message (alpes-commit-time, stored as inbox.source_committed_at).
// Both are Postgres commit-record timestamps on this host's clock.
type Latency struct {
	Rate float64 `json:"rate_per_s"`
	// RateBasis says where Rate comes from: half of A′ in the same run, or
	// the run's sizes.
	RateBasis string `json:"rate_basis"`
	// Per consumer (bff, orders, payments, reporting), in milliseconds.
	P50  map[string]Spread `json:"p50_ms"`
	P99  map[string]Spread `json:"p99_ms"`
	P999 map[string]Spread `json:"p99_9_ms"`
	// Worst is, per run, the highest p99 of any consumer.
	WorstP99 Spread       `json:"worst_p99_ms"`
	Runs     []LatencyRun `json:"runs"`
}

// LatencyRun is one measured window.
type LatencyRun struct {
	Client      loadgen.Summary            `json:"client"`
	WindowStart time.Time                  `json:"window_start"`
	WindowEnd   time.Time                  `json:"window_end"`
	Consumers   map[string]ConsumerLatency `json:"consumers"`
}

// ConsumerLatency is one consumer's distribution in one window.
type ConsumerLatency struct {
	Messages int64   `json:"messages"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p99_9_ms"`
	Max      float64 `json:"max_ms"`
}

// latency measures C, each rate on a fresh stack: first at half of A′ when
// this run measured A′ (the figure judged against the target), then at each
// of Sizes.LatencyRates; without A′, the first of those is C.
func (r *runner) latency(ctx context.Context) ([]*Latency, error) {
	var all []*Latency
	rates := r.opts.Sizes.LatencyRates
	basis := "the run's sizes"
	if len(rates) > 0 {
		var first float64
		first, basis = r.fixedRate(rates[0])
		if first != rates[0] {
			rates = append([]float64{first}, rates...)
		}
	}
	for i, rate := range rates {
		l, err := r.latencyAt(ctx, rate)
		if l != nil {
			l.RateBasis = "the run's sizes"
			if i == 0 {
				l.RateBasis = basis
			}
			all = append(all, l)
		}
		if err != nil {
			return all, fmt.Errorf("at %.0f/s: %w", rate, err)
		}
	}
	return all, nil
}

func (r *runner) latencyAt(ctx context.Context, rate float64) (*Latency, error) {
	sz := r.opts.Sizes
	sys, err := r.startSystem(ctx, nil, map[string]string{"track_commit_timestamp": "on"})
	if err != nil {
		return nil, err
	}
	defer sys.close()
	l := &Latency{Rate: rate, P50: map[string]Spread{}, P99: map[string]Spread{}, P999: map[string]Spread{}}
	for run := range r.opts.Runs {
		start := time.Now()
		sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: rate,
			Duration: sz.LatencyWarmUp + sz.LatencyDuration, OutcomeWait: sz.OutcomeWait, Seed: uint64(run) + 500})
		if err != nil && !errors.Is(err, loadgen.ErrUnresolved) {
			return l, fmt.Errorf("placing orders: %w", err)
		}
		sys.quiesce(ctx, sz.OutcomeWait)
		lr := LatencyRun{Client: sum, WindowStart: start.Add(sz.LatencyWarmUp), Consumers: map[string]ConsumerLatency{}}
		lr.WindowEnd = lr.WindowStart.Add(sz.LatencyDuration)
		for _, db := range migrations.Services {
			c, err := consumerLatency(ctx, sys, db, lr.WindowStart, lr.WindowEnd)
			if err != nil {
				return l, err
			}
			lr.Consumers[db] = c
		}
		r.printf("   C run %d at %.0f/s: %d accepted, %d unresolved; p99 bff %.1f ms, orders %.1f, payments %.1f, reporting %.1f",
			run+1, rate, sum.Accepted, sum.Unresolved, lr.Consumers["bff"].P99, lr.Consumers["orders"].P99,
			lr.Consumers["payments"].P99, lr.Consumers["reporting"].P99)
		l.Runs = append(l.Runs, lr)
	}
	for _, db := range migrations.Services {
		l.P50[db] = spreadBy(l.Runs, func(lr LatencyRun) float64 { return lr.Consumers[db].P50 })
		l.P99[db] = spreadBy(l.Runs, func(lr LatencyRun) float64 { return lr.Consumers[db].P99 })
		l.P999[db] = spreadBy(l.Runs, func(lr LatencyRun) float64 { return lr.Consumers[db].P999 })
	}
	l.WorstP99 = spreadBy(l.Runs, func(lr LatencyRun) float64 {
		worst := 0.0
		for _, c := range lr.Consumers {
			worst = max(worst, c.P99)
		}
		return worst
	})
	return l, nil
}

// consumerLatency reads one consumer's commit → applied distribution for
// the source commits in [from, to).
func consumerLatency(ctx context.Context, sys *system, db string, from, to time.Time) (ConsumerLatency, error) {
	var c ConsumerLatency
	var qs []float64
	var maxMS *float64
	err := sys.admin[db].QueryRow(ctx, `
		SELECT count(*), coalesce(percentile_disc(ARRAY[0.5, 0.99, 0.999]) WITHIN GROUP (ORDER BY ms), '{0,0,0}'), max(ms)
		FROM (SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin) - source_committed_at) * 1000)::float8 AS ms
		      FROM inbox WHERE source_committed_at >= $1 AND source_committed_at < $2) d`, from, to).Scan(&c.Messages, &qs, &maxMS)
	if err != nil {
		return c, fmt.Errorf("reading %s's inbox: %w", db, err)
	}
	if len(qs) == 3 {
		c.P50, c.P99, c.P999 = qs[0], qs[1], qs[2]
	}
	if maxMS != nil {
		c.Max = *maxMS
	}
	return c, nil
}
