// Package bench runs the benchmark scenarios (figures A to E, docs/performance.md) against the whole
// system and writes the report: docs/benchmarks.md for readers and
// docs/benchmarks.json with every raw number.
//
// Each scenario starts what it measures as separate processes of the alpes
// binary (lab/procstack), with a durable Postgres and a durable broker:
//
//	A  the highest order rate the whole pipeline sustains (open-loop client, rising rates)
//	floor  A's reference: Postgres alone doing the minimal writes of one order
//	       on the services' schemas (floor.go), run beside A
//	B  the relay's drain of a backlog ÷ pg_recvlogical's, side by side, plus a polling outbox
//	C  commit → applied latency per consumer at a fixed rate
//	D  a constant-rate run: per-window throughput and p99, outbox size and slot lag
//	E  peak RSS and CPU per order of every component, during B and D
//	broker  the brokers' own produce and consume rates: the embedded broker
//	        in process and Apache Pulsar standalone, interleaved
//	scale  the consumer stage (orders, payments) with 1, 2 and 4 instances
//	       on Key_Shared, each process held to a fixed CPU share (scale.go)
//
// B and broker also run on the real Apache Pulsar standalone
// (internal/pulsarstandalone, fetched once with Maven), beside the
// embedded broker in the same run, so that the report compares the two
// under the same conditions.
//
// Benchmarks measure; nothing here asserts a speed. Run is not safe for
// concurrent use with another Run on the same output directory.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// Scenario names, as --only takes them.
const (
	ScenarioThroughput = "A"
	ScenarioFloor      = "floor" // runs with A too
	ScenarioDrain      = "B"
	ScenarioLatency    = "C"
	ScenarioConstancy  = "D"
	ScenarioMemory     = "E" // measured during B and D
	ScenarioBroker     = "broker"
	ScenarioScale      = "scale"
)

// Scenarios lists every scenario name in the order they run.
var Scenarios = []string{ScenarioThroughput, ScenarioFloor, ScenarioDrain, ScenarioLatency, ScenarioConstancy, ScenarioMemory, ScenarioBroker, ScenarioScale}

// Options configures a benchmark run. The zero value is not valid: set at
// least Sizes (FullSizes or QuickSizes) and Runs.
type Options struct {
	// Binary is the alpes executable whose subcommands run the components;
	// empty means this process's own executable.
	Binary string
	// Out is the directory that receives benchmarks.md and benchmarks.json;
	// empty writes nothing (the report is still returned).
	Out string
	// Runs is how many times each scenario is repeated; figures are the
	// median, with the min–max.
	Runs int
	// Only restricts the run to these scenarios (see Scenarios); empty runs
	// all. E needs B and D and runs them; A runs the floor beside it.
	Only []string
	// Sizes sets every scenario's rates, durations and counts.
	Sizes Sizes
	// Mode names the sizes in the report: "full", "quick" or anything else.
	Mode string
	// Command is the command line, as the report shows it.
	Command string
	// Progress receives one line per step as the run goes; nil for none.
	Progress io.Writer
	// Logger receives the stacks' progress messages. Nil discards them.
	Logger *slog.Logger
}

// Sizes are the knobs of every scenario. Durations are in nanoseconds in
// the JSON.
type Sizes struct {
	// A: the first rate (orders/s), the factor between steps, the highest
	// rate tried, and how long each step places orders.
	RampStart  float64       `json:"ramp_start_per_s"`
	RampFactor float64       `json:"ramp_factor"`
	RampMax    float64       `json:"ramp_max_per_s"`
	RampStep   time.Duration `json:"ramp_step_ns"`
	// B: outbox transactions (one row each) in the backlog; rows per poll of
	// the polling baseline.
	Backlog   int `json:"backlog_tx"`
	PollBatch int `json:"poll_batch"`
	// C: the fixed rates (each on its own stack), a warm-up that is not
	// measured, and the measured window.
	LatencyRates    []float64     `json:"latency_rates_per_s"`
	LatencyWarmUp   time.Duration `json:"latency_warm_up_ns"`
	LatencyDuration time.Duration `json:"latency_duration_ns"`
	// D: the fixed rate, the whole run and the window of each line; the
	// relay's outbox retention during D, so that the outbox size can level.
	ConstRate      float64       `json:"const_rate_per_s"`
	ConstDuration  time.Duration `json:"const_duration_ns"`
	ConstWindow    time.Duration `json:"const_window_ns"`
	ConstRetention time.Duration `json:"const_outbox_retention_ns"`
	// Broker: messages produced and consumed per measurement.
	BrokerMessages int `json:"broker_messages"`
	// Floor: the orders measured per run and the concurrent clients that
	// replay them.
	FloorOrders  int `json:"floor_orders"`
	FloorClients int `json:"floor_clients"`
	// Scale: the numbers of instances of orders and of payments (each on
	// its own stack), every stage process's share of one core, the orders
	// of each backlog and the rate they are placed at while the stage is
	// stopped.
	ScaleInstances []int   `json:"scale_instances"`
	ScaleCPUShare  float64 `json:"scale_cpu_share"`
	ScaleOrders    int     `json:"scale_orders"`
	ScalePlaceRate float64 `json:"scale_place_rate_per_s"`
	// OutcomeWait bounds how long the client waits for one order's outcome.
	OutcomeWait time.Duration `json:"outcome_wait_ns"`
	// SettleMax bounds the wait for a quiet box before each scenario (see
	// Settled); 0 starts each at once.
	SettleMax time.Duration `json:"settle_max_ns"`
}

// FullSizes are the sizes of a recorded run (about 50 minutes with 3 runs:
// A′ steps of 30 s, as its target is stated, from 100/s in steps of 20 %,
// so that the highest rate that holds is found to within a fifth on a
// 2-core machine; C at half of A′ and at 300/s, the first round's rate;
// D at half of A′). The scale scenario's share keeps four instances'
// stage well under what the rest of the pipeline sustains on 2 cores.
func FullSizes() Sizes {
	return Sizes{
		RampStart: 100, RampFactor: 1.2, RampMax: 6000, RampStep: 30 * time.Second,
		Backlog: 200_000, PollBatch: 1000,
		LatencyRates: []float64{300}, LatencyWarmUp: 5 * time.Second, LatencyDuration: 20 * time.Second,
		ConstRate: 300, ConstDuration: 10 * time.Minute, ConstWindow: time.Minute, ConstRetention: time.Minute,
		FloorOrders: 20_000, FloorClients: 8,
		ScaleInstances: []int{1, 2, 4}, ScaleCPUShare: 0.03, ScaleOrders: 3000, ScalePlaceRate: 300,
		BrokerMessages: 100_000,
		OutcomeWait:    60 * time.Second,
		SettleMax:      time.Minute,
	}
}

// QuickSizes finish in a few minutes, stack start-ups included.
func QuickSizes() Sizes {
	return Sizes{
		RampStart: 100, RampFactor: 1.5, RampMax: 5000, RampStep: 5 * time.Second,
		Backlog: 20_000, PollBatch: 1000,
		LatencyRates: []float64{200}, LatencyWarmUp: 2 * time.Second, LatencyDuration: 10 * time.Second,
		ConstRate: 150, ConstDuration: time.Minute, ConstWindow: 10 * time.Second, ConstRetention: 10 * time.Second,
		FloorOrders: 3000, FloorClients: 8,
		ScaleInstances: []int{1, 2, 4}, ScaleCPUShare: 0.03, ScaleOrders: 1000, ScalePlaceRate: 250,
		BrokerMessages: 20_000,
		OutcomeWait:    30 * time.Second,
		SettleMax:      10 * time.Second,
	}
}

func (o Options) validate() error {
	if o.Runs < 1 {
		return errors.New("runs must be at least 1")
	}
	s := o.Sizes
	if s.RampStart <= 0 || s.RampFactor <= 1 || s.RampMax < s.RampStart || s.RampStep <= 0 {
		return errors.New("sizes: the ramp needs a positive start, a factor above 1, a max ≥ start and a step")
	}
	if s.Backlog <= 0 || s.PollBatch <= 0 || s.BrokerMessages <= 0 {
		return errors.New("sizes: backlog, poll batch and broker messages must be positive")
	}
	if len(s.LatencyRates) == 0 || slices.Min(s.LatencyRates) <= 0 || s.LatencyDuration <= 0 || s.ConstRate <= 0 || s.ConstWindow <= 0 || s.ConstDuration < s.ConstWindow {
		return errors.New("sizes: rates, the latency window and the constant run's window must be positive")
	}
	if s.OutcomeWait <= 0 {
		return errors.New("sizes: the outcome wait must be positive")
	}
	if o.wants(ScenarioFloor) && (s.FloorOrders <= 0 || s.FloorClients <= 0) {
		return errors.New("sizes: the floor needs positive orders and clients")
	}
	if o.wants(ScenarioScale) {
		if len(s.ScaleInstances) == 0 || slices.Min(s.ScaleInstances) < 1 || s.ScaleCPUShare <= 0 || s.ScaleOrders <= 0 || s.ScalePlaceRate <= 0 {
			return errors.New("sizes: the scale scenario needs instances of at least 1, a positive CPU share, orders and rate")
		}
		if quota := time.Duration(s.ScaleCPUShare * float64(cfsPeriod)); quota < time.Millisecond {
			return fmt.Errorf("sizes: a CPU share of %g is %s per %s, under the kernel's smallest quota of 1ms", s.ScaleCPUShare, quota, cfsPeriod)
		}
		// The stage is stopped while its backlog is placed; the broker
		// closes a connection silent for 30 to 60 s.
		if place := float64(s.ScaleOrders) / s.ScalePlaceRate; place > scaleMaxFrozen.Seconds() {
			return fmt.Errorf("sizes: placing the scale backlog takes %.0f s, more than the %s the stage may stay stopped", place, scaleMaxFrozen)
		}
	}
	for _, name := range o.Only {
		if !slices.Contains(Scenarios, name) {
			return fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Scenarios, ", "))
		}
	}
	return nil
}

// wants reports whether the scenario is to run.
func (o Options) wants(name string) bool {
	if len(o.Only) == 0 || slices.Contains(o.Only, name) {
		return true
	}
	// E is measured during B and D; the floor is A's reference.
	return (name == ScenarioDrain || name == ScenarioConstancy) && slices.Contains(o.Only, ScenarioMemory) ||
		name == ScenarioFloor && slices.Contains(o.Only, ScenarioThroughput)
}

// Run runs the chosen scenarios and, with Options.Out set, writes the
// report there. A scenario that fails is recorded in Report.Errors and the
// others still run; Run returns an error joining those failures after
// writing whatever was measured. When ctx ends first, nothing is written.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the alpes binary: %w", err)
		}
		opts.Binary = exe
	}
	r := &runner{opts: opts, out: opts.Progress}
	if r.out == nil {
		r.out = io.Discard
	}
	rep := &Report{
		Mode: opts.Mode, Command: opts.Command, Runs: opts.Runs, Only: opts.Only, Sizes: opts.Sizes,
		Started: time.Now().UTC(), Machine: readMachine(ctx),
	}
	var errs []error
	planned, done := 0, 0
	for _, name := range Scenarios {
		if opts.wants(name) && name != ScenarioMemory { // E is measured during B and D, no step of its own
			planned++
		}
	}
	step := func(name string, f func(context.Context) error) {
		if !opts.wants(name) || ctx.Err() != nil {
			return
		}
		done++
		r.printf("== %s (scenario %d of %d, %s into the run)", name, done, planned, time.Since(rep.Started).Round(time.Second))
		if s := r.settle(ctx, name); s != nil {
			rep.Settled = append(rep.Settled, *s)
		}
		start := time.Now()
		if err := f(ctx); err != nil {
			err = fmt.Errorf("scenario %s: %w", name, err)
			errs = append(errs, err)
			rep.Errors = append(rep.Errors, err.Error())
			r.printf("   %v", err)
		}
		r.printf("   %s took %s", name, time.Since(start).Round(time.Second))
	}
	step(ScenarioThroughput, func(ctx context.Context) (err error) {
		rep.Throughput, err = r.throughput(ctx)
		if rep.Throughput != nil && rep.Throughput.Rate.Median > 0 {
			r.halfOfA = math.Round(rep.Throughput.Rate.Median / 2)
		}
		return err
	})
	step(ScenarioFloor, func(ctx context.Context) (err error) { rep.Floor, err = r.floor(ctx); return })
	step(ScenarioDrain, func(ctx context.Context) (err error) { rep.Drain, err = r.drain(ctx); return })
	step(ScenarioLatency, func(ctx context.Context) (err error) { rep.Latency, err = r.latency(ctx); return })
	step(ScenarioConstancy, func(ctx context.Context) (err error) { rep.Constancy, err = r.constancy(ctx); return })
	step(ScenarioBroker, func(ctx context.Context) (err error) { rep.Broker, err = r.broker(ctx); return })
	step(ScenarioScale, func(ctx context.Context) (err error) { rep.Scale, err = r.scale(ctx); return })
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadAfter = readLoadAvg()
	if ctx.Err() != nil {
		// An interrupted run would overwrite a whole report with part of one.
		return rep, errors.Join(append(errs, fmt.Errorf("interrupted, nothing written: %w", ctx.Err()))...)
	}
	if opts.Out != "" {
		if err := rep.Write(opts.Out); err != nil {
			errs = append(errs, err)
		} else {
			r.printf("wrote %s and %s", filepath.Join(opts.Out, MarkdownFile), filepath.Join(opts.Out, JSONFile))
		}
	}
	return rep, errors.Join(errs...)
}

// runner carries the options through the scenarios.
type runner struct {
	opts       Options
	out        io.Writer
	pulsarDist *pulsarstandalone.Distribution // fetched on first use
	debezium   *debeziumState                 // fetched on first use, or why not
	// halfOfA is half of the rate A′ held in this run (median of runs), the
	// rate C and D are measured at; 0 when A did not run or nothing held,
	// and they use their Sizes instead.
	halfOfA float64
}

// fixedRate is the rate C or D runs at: half of A′ when this run measured
// it, else the rate from Sizes; basis says which, for the report.
func (r *runner) fixedRate(fromSizes float64) (rate float64, basis string) {
	if r.halfOfA > 0 {
		return r.halfOfA, "half of A′ in this run"
	}
	return fromSizes, "the run's sizes (A′ not measured in this run)"
}

func (r *runner) printf(format string, args ...any) {
	fmt.Fprintf(r.out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
