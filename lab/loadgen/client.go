// Package loadgen is alpes's fake-data client and load generator: it places
// orders at the bff like real customers, at an open-loop rate, follows each
// order to its final outcome, and reports what happened and how fast.
//
// Open loop means order i is due at start + i/rate whether or not earlier
// orders have finished, and every latency is measured from that due time, so
// a slow system cannot hide its slowness by slowing the client down
// (no coordinated omission). At the end every accepted order must have
// reached a terminal state (confirmed or rejected); any that did not is
// reported as unresolved, and Run returns ErrUnresolved.
//
// Like a careful real client, it retries an order whose fate is unknown with
// the same Idempotency-Key for a while, and it can record every operation
// and its fate in a Ledger (ok, failed or unknown) for an oracle to check
// the system against afterwards (lab/oracle).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a run.
type Config struct {
	// BFFURL is the bff's base URL, e.g. http://127.0.0.1:8000.
	BFFURL string
	// Rate is the number of orders placed per second.
	Rate float64
	// Duration bounds the run; Count bounds the orders. At least one is set;
	// the run ends at whichever comes first.
	Duration time.Duration
	Count    int
	// MaxInFlight bounds orders placed and not yet settled. Default 2,000.
	MaxInFlight int
	// OutcomeWait is how long the client waits for one order's outcome
	// (the bff's ?wait= long poll, repeated). Default 60s.
	OutcomeWait time.Duration
	// Seed makes the fake customers and baskets reproducible.
	Seed uint64
	// Progress receives a line per ProgressEvery (default 1s); nil for none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// HTTPClient is used for every request. Default: one with keep-alives
	// sized for MaxInFlight.
	HTTPClient *http.Client
	Logger     *slog.Logger

	// Ledger, when set, receives every operation with its fate (see Fate),
	// for an oracle to check the system against.
	Ledger *Ledger
	// RetryFor is how long an order whose fate is unknown (no answer, a
	// reset, a timeout, a 5xx other than the bff's 503 problem) is retried
	// with the same Idempotency-Key, from its first attempt. Default 30s;
	// negative: never retried.
	RetryFor time.Duration
	// RequestTimeout bounds one POST attempt; one that times out has an
	// unknown fate and is retried. Default 60s.
	RequestTimeout time.Duration
	// Stop, when closed, ends the placing of new orders as the end of
	// Duration would; the orders already placed are still followed.
	Stop <-chan struct{}
}

// ErrUnresolved means accepted orders did not reach a terminal state.
var ErrUnresolved = errors.New("orders without a final outcome")

func (c Config) withDefaults() (Config, error) {
	if c.BFFURL == "" {
		return c, errors.New("no bff URL")
	}
	if c.Rate <= 0 {
		return c, errors.New("the rate must be positive")
	}
	if c.Duration <= 0 && c.Count <= 0 {
		return c, errors.New("give a duration or a count")
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 2000
	}
	if c.OutcomeWait <= 0 {
		c.OutcomeWait = 60 * time.Second
	}
	if c.RetryFor == 0 {
		c.RetryFor = 30 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 60 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &http.Transport{
			MaxIdleConns: c.MaxInFlight, MaxIdleConnsPerHost: c.MaxInFlight, IdleConnTimeout: 30 * time.Second,
		}}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Run places orders until the duration or count is reached, waits for their
// outcomes, and summarises. It returns ErrUnresolved (with the summary) when
// an accepted order did not settle.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	api := &bffAPI{base: cfg.BFFURL, http: cfg.HTTPClient}
	skus, err := api.waitForProducts(ctx, 30*time.Second)
	if err != nil {
		return Summary{}, fmt.Errorf("listing products: %w", err)
	}
	r := &run{cfg: cfg, api: api, faker: newFaker(cfg.Seed, skus), stats: newStats()}
	return r.run(ctx)
}

type run struct {
	cfg      Config
	api      *bffAPI
	faker    *faker
	stats    *stats
	inFlight atomic.Int64
}

func (r *run) run(ctx context.Context) (Summary, error) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	slots := make(chan struct{}, r.cfg.MaxInFlight)
	var wg sync.WaitGroup
	stopProgress := r.reportProgress(start)
	defer stopProgress()

	for i := 0; r.cfg.Count <= 0 || i < r.cfg.Count; i++ {
		due := start.Add(time.Duration(i) * interval)
		if r.cfg.Duration > 0 && due.Sub(start) >= r.cfg.Duration {
			break
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				goto done
			case <-r.cfg.Stop:
				goto done
			case <-time.After(wait):
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			goto done
		case <-r.cfg.Stop:
			goto done
		}
		order := r.faker.order()
		wg.Add(1)
		r.inFlight.Add(1)
		go func() {
			defer wg.Done()
			defer func() { r.inFlight.Add(-1); <-slots }()
			r.place(ctx, due, order)
		}()
	}
done:
	wg.Wait()
	sum := r.stats.summary(time.Since(start))
	if sum.Unresolved > 0 {
		return sum, fmt.Errorf("%w: %d of %d accepted", ErrUnresolved, sum.Unresolved, sum.Accepted)
	}
	return sum, ctx.Err()
}

// place sends one order, follows it to its outcome, and records it in the
// ledger, if any.
func (r *run) place(ctx context.Context, due time.Time, o Order) {
	r.stats.sent.Add(1)
	op := r.placeOrder(ctx, o)
	if r.cfg.Ledger != nil {
		defer func() { r.cfg.Ledger.Record(op) }()
	}
	if op.Attempts > 1 {
		r.stats.retried.Add(1)
	}
	switch op.Fate {
	case FateUnknown:
		r.stats.failed.Add(1)
		r.cfg.Logger.Debug("placing an order", "key", op.Key, "err", op.Err)
		return
	case FateFailed:
		r.stats.refused.Add(1)
		return
	}
	r.stats.accepted.Add(1)
	r.stats.record(&r.stats.acceptLatency, time.Since(due))

	op.Outcome = r.awaitOutcome(ctx, op.OrderID)
	switch op.Outcome {
	case "confirmed":
		r.stats.confirmed.Add(1)
	case "rejected":
		r.stats.rejected.Add(1)
	default:
		r.stats.unresolved.Add(1)
		return
	}
	r.stats.record(&r.stats.outcomeLatency, time.Since(due))
}

// reportProgress prints a line per interval until the returned func is called.
func (r *run) reportProgress(start time.Time) func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(r.cfg.ProgressEvery)
		defer tick.Stop()
		var lastSent int64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				sent := r.stats.sent.Load()
				rate := float64(sent-lastSent) / now.Sub(last).Seconds()
				lastSent, last = sent, now
				fmt.Fprintf(r.cfg.Progress, "%6.1fs  sent %d  %.0f/s  in flight %d  accepted %d  confirmed %d  rejected %d  p99 accept %s\n",
					now.Sub(start).Seconds(), sent, rate, r.inFlight.Load(), r.stats.accepted.Load(),
					r.stats.confirmed.Load(), r.stats.rejected.Load(), r.stats.percentile(&r.stats.acceptLatency, 0.99))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
