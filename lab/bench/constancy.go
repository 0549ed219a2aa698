package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/migrations"
)

// Constancy is figure D, and figure E during it: one long run at a fixed
// rate, cut into windows that are placed back to back by separate open-loop
// clients, with the outbox size, the slots' lag and the relay's lag
// sampled every second.
type Constancy struct {
	Rate float64 `json:"rate_per_s"`
	// RateBasis says where Rate comes from: half of A′ in the same run, or
	// the run's sizes.
	RateBasis       string        `json:"rate_basis"`
	DurationSeconds float64       `json:"duration_s"`
	WindowSeconds   float64       `json:"window_s"`
	RetentionSecs   float64       `json:"outbox_retention_s"`
	Windows         []ConstWindow `json:"windows"`
	Samples         []ConstSample `json:"samples"`
	Throughput      Spread        `json:"throughput_per_s"` // over windows
	AcceptP99       Spread        `json:"accept_p99_ms"`
	OutcomeP99      Spread        `json:"outcome_p99_ms"`
	// Deviations: the largest distance of a window from the median, in %.
	ThroughputDevPct float64 `json:"throughput_deviation_pct"`
	AcceptP99DevPct  float64 `json:"accept_p99_deviation_pct"`
	OutcomeP99DevPct float64 `json:"outcome_p99_deviation_pct"`
	// Maxima over the first and second half of the run.
	OutboxMax  [2]int64   `json:"outbox_rows_max_halves"`
	SlotLagMax [2]int64   `json:"slot_lag_bytes_max_halves"`
	RelayMax   [2]float64 `json:"relay_seconds_max_halves"`
	// OutboxBounded is nil when the run is too short to tell (the relay
	// sweeps once a minute); SlotLagBounded likewise for an empty run.
	OutboxBounded  *bool `json:"outbox_bounded"`
	SlotLagBounded *bool `json:"slot_lag_bounded"`
	Accepted       int64 `json:"accepted"`
	Settled        int64 `json:"settled"`
	Unresolved     int64 `json:"unresolved"`
	Refused        int64 `json:"refused_or_failed"`
	// Cost is per accepted order over the whole run; PeakRSS is figure E.
	Cost    Cost               `json:"cost_per_order"`
	PeakRSS map[string]float64 `json:"peak_rss_mib"`
}

// ConstWindow is one window of the run.
type ConstWindow struct {
	Client loadgen.Summary `json:"client"`
	// Throughput is the orders that reached their terminal state during
	// the window, per second (the bff's order view, by updated_at);
	// Offered is the orders placed in it, per second.
	Throughput float64 `json:"throughput_per_s"`
	Offered    float64 `json:"offered_per_s"`
	// Checkpoints and Autovacuums are the Postgres background work that
	// began in the window (from the samples): checkpoints of the cluster,
	// and autovacuum and autoanalyze runs on the producing databases'
	// tables. They are what a window with a higher p99 usually shares.
	Checkpoints int64 `json:"checkpoints"`
	Autovacuums int64 `json:"autovacuums"`
}

// ConstSample is one reading of the system's backlog.
type ConstSample struct {
	Seconds      float64 `json:"t_s"`
	OutboxRows   int64   `json:"outbox_rows"`
	SlotLagBytes int64   `json:"slot_lag_bytes"` // the largest pg_current_wal_lsn() − confirmed_flush_lsn
	RelaySeconds float64 `json:"relay_seconds_behind"`
	// Checkpoints (pg_stat_bgwriter: timed and requested) and Autovacuums
	// (autovacuum and autoanalyze runs on the producing databases' tables)
	// are cumulative counts since the cluster started.
	Checkpoints int64 `json:"checkpoints"`
	Autovacuums int64 `json:"autovacuums"`
}

// sweepInterval is how often the relay sweeps the outbox (relay.Config's default).
const sweepInterval = time.Minute

func (r *runner) constancy(ctx context.Context) (*Constancy, error) {
	sz := r.opts.Sizes
	retention := sz.ConstRetention.String()
	sys, err := r.startSystem(ctx, map[string][]string{"relay": {"--outbox-retention", retention}}, nil)
	if err != nil {
		return nil, err
	}
	defer sys.close()
	rate, basis := r.fixedRate(sz.ConstRate)
	c := &Constancy{Rate: rate, RateBasis: basis, DurationSeconds: sz.ConstDuration.Seconds(), WindowSeconds: sz.ConstWindow.Seconds(),
		RetentionSecs: sz.ConstRetention.Seconds()}
	if _, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: rate, Duration: 2 * time.Second,
		OutcomeWait: sz.OutcomeWait, Seed: 2999}); err != nil {
		return c, fmt.Errorf("warming up: %w", err)
	}
	sys.quiesce(ctx, sz.OutcomeWait)
	before := sys.usage(ctx)

	n := int(sz.ConstDuration / sz.ConstWindow)
	start := time.Now()
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	samples := make(chan []ConstSample, 1)
	go func() { samples <- sampleBacklog(sctx, sys, start) }()

	c.Windows = make([]ConstWindow, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		due := start.Add(time.Duration(k) * sz.ConstWindow)
		select {
		case <-ctx.Done():
			wg.Wait()
			return c, ctx.Err()
		case <-time.After(time.Until(due)):
		}
		wg.Go(func() {
			sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: rate, Duration: sz.ConstWindow,
				OutcomeWait: sz.OutcomeWait, Seed: 3000 + uint64(k)})
			if errors.Is(err, loadgen.ErrUnresolved) {
				err = nil // counted below
			}
			c.Windows[k] = ConstWindow{Client: sum, Offered: float64(sum.Sent) / sz.ConstWindow.Seconds()}
			errs[k] = err
			r.printf("   D window %d/%d: %d placed, accept p99 %.1f ms, outcome p99 %.1f ms",
				k+1, n, sum.Sent, sum.AcceptLatency.P99, sum.OutcomeLatency.P99)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("placing orders: %w", err)
	}
	stopSampling()
	c.Samples = <-samples
	sys.quiesce(ctx, sz.OutcomeWait)
	time.Sleep(1100 * time.Millisecond) // Postgres publishes its transaction counts at most once a second
	after := sys.usage(ctx)
	if err := settledPerWindow(ctx, sys, start, sz.ConstWindow, c.Windows); err != nil {
		return c, err
	}
	backgroundPerWindow(c.Samples, sz.ConstWindow, c.Windows)

	var thr, acc, out []float64
	for _, w := range c.Windows {
		thr = append(thr, w.Throughput)
		acc = append(acc, w.Client.AcceptLatency.P99)
		out = append(out, w.Client.OutcomeLatency.P99)
		c.Accepted += w.Client.Accepted
		c.Settled += w.Client.Confirmed + w.Client.Rejected
		c.Unresolved += w.Client.Unresolved
		c.Refused += w.Client.Refused + w.Client.Failed
	}
	c.Throughput, c.AcceptP99, c.OutcomeP99 = spreadOf(thr), spreadOf(acc), spreadOf(out)
	c.ThroughputDevPct, c.AcceptP99DevPct, c.OutcomeP99DevPct = deviationPct(thr), deviationPct(acc), deviationPct(out)
	half := sz.ConstDuration.Seconds() / 2
	for _, s := range c.Samples {
		h := 0
		if s.Seconds >= half {
			h = 1
		}
		c.OutboxMax[h] = max(c.OutboxMax[h], s.OutboxRows)
		c.SlotLagMax[h] = max(c.SlotLagMax[h], s.SlotLagBytes)
		c.RelayMax[h] = max(c.RelayMax[h], s.RelaySeconds)
	}
	if len(c.Samples) > 0 {
		// Lag holds when the second half never goes well past the first:
		// 1.5 times its maximum, or 16 MiB of WAL (a second or two of
		// status interval at these rates).
		b := c.SlotLagMax[1] <= max(c.SlotLagMax[0]*3/2, 16<<20)
		c.SlotLagBounded = &b
		// The outbox levels once rows start leaving it: after the
		// retention plus a sweep interval. The second half must then not
		// exceed the first by more than a fifth.
		if fill := sz.ConstRetention + sweepInterval; sz.ConstDuration >= 2*fill+sz.ConstWindow {
			ob := c.OutboxMax[1] <= c.OutboxMax[0]*6/5
			c.OutboxBounded = &ob
		}
	}
	c.Cost = costBetween(before, after, c.Accepted, runtime.NumCPU())
	c.PeakRSS = peakRSS(after)
	return c, nil
}

// sampleBacklog reads the outbox size, the slots' lag and the relay's lag
// every second until ctx ends.
func sampleBacklog(ctx context.Context, sys *system, start time.Time) []ConstSample {
	var out []ConstSample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		s := ConstSample{Seconds: time.Since(start).Seconds()}
		for _, db := range migrations.Producers {
			var rows int64
			if err := sys.admin[db].QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&rows); err == nil {
				s.OutboxRows += rows
			}
			var runs int64
			if err := sys.admin[db].QueryRow(ctx, `
				SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::bigint
				FROM pg_stat_user_tables`).Scan(&runs); err == nil {
				s.Autovacuums += runs
			}
		}
		_ = sys.admin["orders"].QueryRow(ctx, `
			SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`).Scan(&s.Checkpoints)
		_ = sys.admin["orders"].QueryRow(ctx, `
			SELECT coalesce(max(pg_current_wal_lsn() - confirmed_flush_lsn), 0)::bigint
			FROM pg_replication_slots WHERE slot_type = 'logical'`).Scan(&s.SlotLagBytes)
		if sources, err := sys.relayLag(ctx); err == nil {
			for _, l := range sources {
				s.RelaySeconds = max(s.RelaySeconds, l.SecondsBehind)
			}
		}
		if ctx.Err() == nil {
			out = append(out, s)
		}
	}
}

// backgroundPerWindow fills each window's Checkpoints and Autovacuums: the
// growth of the cumulative counts between the samples before and in it.
func backgroundPerWindow(samples []ConstSample, window time.Duration, windows []ConstWindow) {
	var prev *ConstSample
	for i := range samples {
		s := &samples[i]
		if prev != nil {
			if k := int(s.Seconds / window.Seconds()); k >= 0 && k < len(windows) {
				windows[k].Checkpoints += max(0, s.Checkpoints-prev.Checkpoints)
				windows[k].Autovacuums += max(0, s.Autovacuums-prev.Autovacuums)
			}
		}
		prev = s
	}
}

// settledPerWindow fills each window's Throughput from the bff's order
// view: the orders whose last update (their terminal state) fell in it.
func settledPerWindow(ctx context.Context, sys *system, start time.Time, window time.Duration, windows []ConstWindow) error {
	rows, err := sys.admin["bff"].Query(ctx, `
		SELECT floor(extract(epoch FROM updated_at - $1::timestamptz) / $2)::int AS k, count(*)
		FROM order_views WHERE status IN ('confirmed', 'rejected') AND updated_at >= $1
		GROUP BY k`, start, window.Seconds())
	if err != nil {
		return fmt.Errorf("counting settled orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k int
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		if k >= 0 && k < len(windows) {
			windows[k].Throughput = float64(n) / window.Seconds()
		}
	}
	return rows.Err()
}
