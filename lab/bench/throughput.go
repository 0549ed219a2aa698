package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
)

// Throughput is figure A: the highest order rate the whole pipeline
// sustains, and the bff's accept latency at that rate.
type Throughput struct {
	// Rate is the highest rate that held, per run.
	Rate Spread `json:"rate_per_s"`
	// AcceptP50 and AcceptP99 are the HTTP accept latencies (due time → 202)
	// at that rate; OutcomeP99 is due time → terminal state seen.
	AcceptP50  Spread       `json:"accept_p50_ms"`
	AcceptP99  Spread       `json:"accept_p99_ms"`
	OutcomeP99 Spread       `json:"outcome_p99_ms"`
	Runs       []RampRun    `json:"runs"`
	Bound      *RampBound   `json:"bound,omitempty"`
	Criteria   RampCriteria `json:"criteria"`
}

// RampCriteria are the thresholds a step is judged by.
type RampCriteria struct {
	// AcceptP99MaxMs bounds the queue at the front door: the client is open
	// loop, so a bff that cannot keep up shows as accept latencies that grow
	// with the step, while everything behind it keeps up with what it lets in.
	AcceptP99MaxMs float64 `json:"accept_p99_max_ms"`
	// OutcomeP99MaxMs bounds the time from an order's due time to the
	// client learning its outcome: the whole pipeline's latency.
	OutcomeP99MaxMs      float64 `json:"outcome_p99_max_ms"`
	RelayFloorSeconds    float64 `json:"relay_floor_s"`
	ConsumerFloorSeconds float64 `json:"consumer_floor_s"`
	SampleEvery          string  `json:"sample_every"`
}

// RampRun is one run of rising rates on a fresh stack.
type RampRun struct {
	Steps []RampStep `json:"steps"`
	// Held is the index of the highest step that held, -1 for none.
	Held int `json:"held"`
}

// RampStep is one rate of a run.
type RampStep struct {
	Rate    float64         `json:"rate_per_s"`
	Summary loadgen.Summary `json:"client"`
	Holds   bool            `json:"holds"`
	Why     []string        `json:"why_not,omitempty"`
	// Lag series' medians over the first and last third of the step, and
	// their maxima: relay seconds_behind and, per consumer, how far behind
	// it applies.
	RelayHead    float64            `json:"relay_head_s"`
	RelayTail    float64            `json:"relay_tail_s"`
	RelayMax     float64            `json:"relay_max_s"`
	ConsumerTail map[string]float64 `json:"consumer_tail_s"`
	ConsumerMax  map[string]float64 `json:"consumer_max_s"`
	Samples      int                `json:"samples"`
	// Cost is per accepted order, from the step's start to the pipeline
	// being idle again.
	Cost Cost `json:"cost_per_order"`
}

// RampBound is what bounds A: the cost per order at the highest rate that
// held, and at the first that did not, in the median run.
type RampBound struct {
	Held   *RampStep `json:"held,omitempty"`
	Failed *RampStep `json:"failed,omitempty"`
}

var rampCriteria = RampCriteria{AcceptP99MaxMs: targetAcceptP99Ms, OutcomeP99MaxMs: targetOutcomeP99Ms, RelayFloorSeconds: 0.25, ConsumerFloorSeconds: 0.5, SampleEvery: "250ms"}

func (r *runner) throughput(ctx context.Context) (*Throughput, error) {
	t := &Throughput{Criteria: rampCriteria}
	for run := range r.opts.Runs {
		rr, err := r.rampRun(ctx, run)
		if err != nil {
			return t, err
		}
		t.Runs = append(t.Runs, rr)
	}
	held := func(rr RampRun) *RampStep {
		if rr.Held < 0 {
			return nil
		}
		return &rr.Steps[rr.Held]
	}
	at := func(f func(RampStep) float64) Spread {
		return spreadBy(t.Runs, func(rr RampRun) float64 {
			if s := held(rr); s != nil {
				return f(*s)
			}
			return math.NaN()
		})
	}
	t.Rate = spreadBy(t.Runs, func(rr RampRun) float64 {
		if s := held(rr); s != nil {
			return s.Rate
		}
		return 0
	})
	t.AcceptP50 = at(func(s RampStep) float64 { return s.Summary.AcceptLatency.P50 })
	t.AcceptP99 = at(func(s RampStep) float64 { return s.Summary.AcceptLatency.P99 })
	t.OutcomeP99 = at(func(s RampStep) float64 { return s.Summary.OutcomeLatency.P99 })
	// The bound is read from the run whose held rate is the median's.
	if len(t.Runs) > 0 {
		idx := slices.IndexFunc(t.Runs, func(rr RampRun) bool {
			s := held(rr)
			return (s == nil && t.Rate.Median == 0) || (s != nil && s.Rate == t.Rate.Median)
		})
		if idx < 0 {
			idx = 0
		}
		rr := t.Runs[idx]
		b := &RampBound{Held: held(rr)}
		if next := rr.Held + 1; next < len(rr.Steps) {
			b.Failed = &rr.Steps[next]
		}
		t.Bound = b
	}
	return t, nil
}

// rampRun starts a stack and places orders at rising rates until a step
// does not hold or the highest rate is reached.
func (r *runner) rampRun(ctx context.Context, run int) (RampRun, error) {
	rr := RampRun{Held: -1}
	sys, err := r.startSystem(ctx, nil, nil)
	if err != nil {
		return rr, err
	}
	defer sys.close()
	sz := r.opts.Sizes
	// Warm-up, not recorded: connections, caches, the first JIT of every
	// query plan.
	if _, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: sz.RampStart / 2, Duration: 2 * time.Second,
		OutcomeWait: sz.OutcomeWait, Seed: uint64(run)*1000 + 999}); err != nil {
		return rr, fmt.Errorf("warming up: %w", err)
	}
	sys.quiesce(ctx, sz.OutcomeWait)
	for i, rate := 0, sz.RampStart; rate <= sz.RampMax*1.0001; i, rate = i+1, math.Round(rate*sz.RampFactor) {
		step, err := r.rampStep(ctx, sys, rate, uint64(run)*1000+uint64(i))
		if err != nil {
			return rr, err
		}
		rr.Steps = append(rr.Steps, step)
		verdict := "holds"
		if !step.Holds {
			verdict = fmt.Sprintf("does not hold: %v", step.Why)
		}
		r.printf("   A run %d: %5.0f/s accepted %d, settled %d, accept p99 %.1f ms, relay lag tail %.2fs → %s",
			run+1, rate, step.Summary.Accepted, step.Summary.Confirmed+step.Summary.Rejected, step.Summary.AcceptLatency.P99, step.RelayTail, verdict)
		if !step.Holds {
			break
		}
		rr.Held = i
	}
	return rr, nil
}

func (r *runner) rampStep(ctx context.Context, sys *system, rate float64, seed uint64) (RampStep, error) {
	sz := r.opts.Sizes
	step := RampStep{Rate: rate, ConsumerTail: map[string]float64{}, ConsumerMax: map[string]float64{}}
	before := sys.usage(ctx)
	samples := make(chan []lagSample, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { samples <- sys.sampleLagEvery(sctx, sz.RampStep, 250*time.Millisecond) }()
	sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: rate, Duration: sz.RampStep,
		OutcomeWait: sz.OutcomeWait, Seed: seed})
	if err != nil && !errors.Is(err, loadgen.ErrUnresolved) {
		return step, fmt.Errorf("placing orders at %.0f/s: %w", rate, err)
	}
	step.Summary = sum
	ls := <-samples
	sys.quiesce(ctx, sz.OutcomeWait)
	time.Sleep(1100 * time.Millisecond) // Postgres publishes its transaction counts at most once a second
	step.Cost = costBetween(before, sys.usage(ctx), sum.Accepted, runtime.NumCPU())

	step.Samples = len(ls)
	relaySeries := make([]float64, len(ls))
	consumers := map[string][]float64{}
	for i, l := range ls {
		relaySeries[i] = l.RelaySeconds
		step.RelayMax = max(step.RelayMax, l.RelaySeconds)
		for name, v := range l.ConsumerSeconds {
			consumers[name] = append(consumers[name], v)
			step.ConsumerMax[name] = max(step.ConsumerMax[name], v)
		}
	}
	step.RelayHead, step.RelayTail = thirds(relaySeries)

	step.Holds = true
	fail := func(format string, args ...any) {
		step.Holds = false
		step.Why = append(step.Why, fmt.Sprintf(format, args...))
	}
	if sum.Refused > 0 || sum.Failed > 0 {
		fail("%d refused, %d failed", sum.Refused, sum.Failed)
	}
	if sum.Unresolved > 0 {
		fail("%d orders without an outcome", sum.Unresolved)
	}
	if sum.AcceptLatency.P99 > rampCriteria.AcceptP99MaxMs {
		fail("the bff falls behind (accept p99 %.0f ms)", sum.AcceptLatency.P99)
	}
	if sum.OutcomeLatency.P99 > rampCriteria.OutcomeP99MaxMs {
		fail("outcomes come late (outcome p99 %.0f ms)", sum.OutcomeLatency.P99)
	}
	if grows(relaySeries, rampCriteria.RelayFloorSeconds) {
		fail("relay lag grows (%.2fs → %.2fs)", step.RelayHead, step.RelayTail)
	}
	for _, name := range slices.Sorted(maps.Keys(consumers)) {
		series := consumers[name]
		_, step.ConsumerTail[name] = thirds(series)
		if grows(series, rampCriteria.ConsumerFloorSeconds) {
			head, tail := thirds(series)
			fail("%s falls behind (%.2fs → %.2fs)", name, head, tail)
		}
	}
	if len(ls) == 0 {
		fail("no lag samples")
	}
	return step, nil
}
