// Package chaos is alpes's chaos soak (`alpes chaos`): the whole system as
// processes (lab/procstack, durable), the fake-data client placing
// orders at a steady rate, and every few seconds a random fault, or two at
// once (Config.Pairs): a component killed with SIGKILL and restarted, or
// frozen with SIGSTOP for a few seconds or past the timeouts; Postgres
// crashed or shut down fast and restarted, or its walsenders and the
// services' sessions ended; the network to Postgres or to the broker slowed,
// cut, reset or losing replies (through fault proxies); the instances of a
// service killed in turn; the streaming relay killed for its standby (see
// fault.go). At the end it stops the load, heals everything, and lets the
// oracle (lab/oracle) judge the system against the client's ledger.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/procstack"
)

// Config configures a soak.
type Config struct {
	// Binary is the alpes executable the components run; empty means this
	// process's own.
	Binary string
	// Dir keeps the stack's data and logs; empty means a temporary
	// directory, removed at the end.
	Dir string
	// Duration is how long the load runs. Default 15m.
	Duration time.Duration
	// Rate is the client's orders per second. Default 50.
	Rate float64
	// Interval is the mean pause between injections; each pause is drawn
	// uniformly from half to one and a half times it. Default 6s.
	Interval time.Duration
	// Seed makes the faults, their order, the pauses and the client's
	// orders reproducible.
	Seed uint64
	// Faults are the kinds to inject, dealt in shuffled rounds. Default
	// AllFaults. The stack is built for them: fault proxies on the links
	// when a network fault is among them, Instances of orders and payments
	// for a churn, a standby relay for a failover.
	Faults []Fault
	// Pairs deals the faults two at a time, held together and healed
	// together (each pair disturbs two different things; Injection.With).
	Pairs bool
	// Instances is how many processes of orders and of payments run when
	// the faults churn them. Default 2.
	Instances int
	// WalSenderTimeout is Postgres's wal_sender_timeout in the soak's
	// cluster, lowered from the default minute so that a freeze past it
	// stays short. Default 10s.
	WalSenderTimeout time.Duration
	// RequestTimeout bounds each of the client's POSTs. Default 10s.
	RequestTimeout time.Duration
	// LongFreeze is how long a LongFreeze stops its process: longer than
	// WalSenderTimeout and RequestTimeout. Default one and a half times
	// the longer of the two.
	LongFreeze time.Duration
	// LinkLatency is the delay of a Latency fault. Default 200ms.
	LinkLatency time.Duration
	// Sweeps, when set, runs the outbox and inbox sweeps with its (short)
	// retentions throughout the soak, and keeps what they delete for the
	// oracle (see sweeps.go).
	Sweeps *procstack.Sweeps
	// MinInjections keeps the load running past Duration until this many
	// faults were injected (a test that must see every kind); a run cut
	// short with fewer is not clean.
	MinInjections int
	// MinOrders is how many orders the load must have had accepted for the
	// run to count: fewer and it is not clean (ErrInconclusive). Default
	// half of Rate × Duration, at least 1.
	MinOrders int
	// FreezeMin and FreezeMax bound how long a frozen process stays
	// stopped. Default 1s and 5s.
	FreezeMin, FreezeMax time.Duration
	// QuietTimeout bounds the oracle's wait for the system to go quiet.
	QuietTimeout time.Duration
	// Pulsar, PulsarDistribution, PulsarURL, PulsarAdminURL and Tenant
	// choose the broker as procstack.Options does: the embedded broker
	// process (the default), the real Apache Pulsar as the broker process,
	// or a broker the stack does not own, which the soak never injects a
	// fault into.
	Pulsar                    string
	PulsarDistribution        pulsarstandalone.Distribution
	PulsarURL, PulsarAdminURL string
	Tenant                    string
	// Out receives a line per injection as it happens, and progress.
	Out    io.Writer
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Duration <= 0 {
		c.Duration = 15 * time.Minute
	}
	if c.Rate <= 0 {
		c.Rate = 50
	}
	if c.Interval <= 0 {
		c.Interval = 6 * time.Second
	}
	if c.MinOrders <= 0 {
		c.MinOrders = max(1, int(c.Rate*c.Duration.Seconds()/2))
	}
	if len(c.Faults) == 0 {
		c.Faults = AllFaults()
	}
	if c.PulsarURL != "" {
		c.Faults = slices.DeleteFunc(slices.Clone(c.Faults), func(f Fault) bool { return f.Target == "broker" })
	}
	if c.FreezeMin <= 0 {
		c.FreezeMin = time.Second
	}
	if c.FreezeMax < c.FreezeMin {
		c.FreezeMax = max(c.FreezeMin, 5*time.Second)
	}
	if c.Instances < 2 {
		c.Instances = 2
	}
	if c.WalSenderTimeout <= 0 {
		c.WalSenderTimeout = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.LongFreeze <= 0 {
		c.LongFreeze = max(c.WalSenderTimeout, c.RequestTimeout) * 3 / 2
	}
	if c.LinkLatency <= 0 {
		c.LinkLatency = 200 * time.Millisecond
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Report is what a soak did and found; it is written as JSON to record a run.
type Report struct {
	Seed       uint64        `json:"seed"`
	Rate       float64       `json:"rate_per_s"`
	Duration   time.Duration `json:"duration_ns"`
	Interval   time.Duration `json:"interval_ns"`
	StartedAt  time.Time     `json:"started_at"`
	LoadFor    time.Duration `json:"load_ns"`
	Injections []Injection   `json:"injections"`
	// ByKind counts injections by fault ("kill relay": 7).
	ByKind map[string]int `json:"injections_by_kind"`
	// Crashes are components found exited without an injection, restarted.
	Crashes []string           `json:"unexpected_exits,omitempty"`
	Client  loadgen.Summary    `json:"client"`
	Ops     loadgen.FateCounts `json:"ops"`
	// MinOrders and MinInjections are what the run had to see to count
	// (Config's).
	MinOrders     int `json:"min_orders"`
	MinInjections int `json:"min_injections,omitempty"`
	// Duplicates are the re-sends the broker and the inboxes absorbed.
	Duplicates Duplicates `json:"duplicates"`
	// Swept is what the sweeps deleted, with Config.Sweeps.
	Swept   *Swept         `json:"swept,omitempty"`
	Verdict oracle.Verdict `json:"verdict"`
	// Reasons are why the run is not clean (Report.Problems), empty when
	// it is.
	Reasons []string `json:"not_clean_because,omitempty"`
}

// ErrViolated means the oracle found a violation or the system did not go quiet.
var ErrViolated = errors.New("the oracle found violations")

// Run starts a durable stack, runs the soak, and returns its report. The
// error is Report.Err when the run is not clean (wrapping ErrViolated when
// the oracle's verdict is not, ErrInconclusive when a component exited by
// itself, an injection could not heal, or the run saw too little), or what
// prevented the soak from running or being judged.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	rep := Report{Seed: cfg.Seed, Rate: cfg.Rate, Duration: cfg.Duration, Interval: cfg.Interval, ByKind: map[string]int{},
		MinOrders: cfg.MinOrders, MinInjections: cfg.MinInjections,
		Duplicates: Duplicates{Inboxes: map[string]int64{}, Unexposed: unexposedInboxes}}
	fmt.Fprintf(cfg.Out, "chaos: starting a durable stack (seed %d)\n", cfg.Seed)
	if cfg.Dir != "" {
		// Postgres runs as its own user when we are root: it must reach in.
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return rep, err
		}
	}
	s, err := procstack.Start(ctx, cfg.stackOptions())
	if err != nil {
		return rep, err
	}
	defer s.Close()
	fmt.Fprintf(cfg.Out, "chaos: stack up; data and logs in %s\n", s.Dir())
	if cfg.Sweeps != nil {
		if err := keepSweptRows(ctx, s); err != nil {
			return rep, err
		}
	}

	var ledger loadgen.Ledger
	stop := make(chan struct{})
	var load sync.WaitGroup
	var sum loadgen.Summary
	var loadErr error
	rep.StartedAt = time.Now()
	load.Go(func() {
		sum, loadErr = loadgen.Run(ctx, loadgen.Config{
			BFFURL: s.BFFURL, Rate: cfg.Rate, Duration: 1000 * time.Hour, Stop: stop, Seed: cfg.Seed,
			OutcomeWait: 2 * time.Minute, RequestTimeout: cfg.RequestTimeout, Ledger: &ledger, Logger: cfg.Logger,
			Progress: cfg.Out, ProgressEvery: 30 * time.Second,
		})
	})

	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))
	d := &deck{rng: rng, faults: cfg.Faults}
	j := &injector{s: s, cfg: cfg, dups: &rep.Duplicates, rng: rng, start: rep.StartedAt}
	loadEnd := rep.StartedAt.Add(cfg.Duration)
	for ctx.Err() == nil && (time.Now().Before(loadEnd) || len(rep.Injections) < cfg.MinInjections) {
		wait(ctx, cfg.Interval/2+time.Duration(rng.Int64N(int64(cfg.Interval)+1)))
		if ctx.Err() != nil || (!time.Now().Before(loadEnd) && len(rep.Injections) >= cfg.MinInjections) {
			break
		}
		rep.Crashes = append(rep.Crashes, restartExited(ctx, s, &rep.Duplicates, cfg.Out)...)
		for _, in := range j.deal(ctx, d) {
			rep.Injections = append(rep.Injections, in)
			rep.ByKind[in.Fault.String()]++
			fmt.Fprintln(cfg.Out, "chaos:", in)
		}
	}
	close(stop)
	rep.LoadFor = time.Since(rep.StartedAt)
	fmt.Fprintf(cfg.Out, "chaos: load stopped after %s; healing\n", rep.LoadFor.Round(time.Second))
	rep.Crashes = append(rep.Crashes, restartExited(ctx, s, &rep.Duplicates, cfg.Out)...)
	if err := heal(ctx, s); err != nil {
		load.Wait()
		return rep, err
	}
	load.Wait()
	rep.Client = sum
	rep.Ops = ledger.Counts()
	if loadErr != nil && !errors.Is(loadErr, loadgen.ErrUnresolved) {
		return rep, fmt.Errorf("running the load: %w", loadErr)
	}
	fmt.Fprintf(cfg.Out, "chaos: ops %d ok, %d failed, %d unknown; waiting for the system to go quiet\n", rep.Ops.OK, rep.Ops.Failed, rep.Ops.Unknown)

	if cfg.Sweeps != nil {
		sw, err := restoreSwept(ctx, s)
		rep.Swept = &sw
		if err != nil {
			return rep, err
		}
	}
	rep.Verdict, err = oracle.Check(ctx, s.OracleConfig(ledger.Ops(), cfg.QuietTimeout, cfg.Logger))
	if err != nil {
		return rep, fmt.Errorf("running the oracle: %w", err)
	}
	for _, p := range s.Procs() {
		rep.Duplicates.bank(ctx, s, p.Name, "at the end")
	}
	rep.Reasons = rep.Problems()
	return rep, rep.Err()
}

// restartExited starts again any component that exited without an
// injection, and names them: each is a crash worth a look in its log. The
// duplicates its incarnation counted are lost (dups).
func restartExited(ctx context.Context, s *procstack.Stack, dups *Duplicates, out io.Writer) []string {
	var names []string
	for _, p := range s.Procs() {
		if p.Running() {
			continue
		}
		fmt.Fprintf(out, "chaos: %s exited by itself (%v); restarting. Log tail:\n%s\n", p.Name, p.ExitErr(), p.LogTail(15))
		names = append(names, fmt.Sprintf("%s %s: %v", time.Now().Format(time.RFC3339), p.Name, p.ExitErr()))
		dups.lose(s, p.Name, "an incarnation exited by itself")
		if err := restart(ctx, p); err != nil {
			fmt.Fprintf(out, "chaos: restarting %s: %v\n", p.Name, err)
		}
	}
	return names
}

// Summary is a few lines for people: the injections by kind, the client's
// counts, the duplicates absorbed, the oracle's verdict and the run's: CLEAN,
// or NOT CLEAN with why.
func (r Report) Summary() string {
	var b []byte
	b = fmt.Appendf(b, "chaos: %d injections over %s of load at %.0f/s (seed %d):\n", len(r.Injections), r.LoadFor.Round(time.Second), r.Rate, r.Seed)
	for _, k := range slices.Sorted(maps.Keys(r.ByKind)) {
		b = fmt.Appendf(b, "  %-26s %d\n", k, r.ByKind[k])
	}
	failedInjections := 0
	for _, in := range r.Injections {
		if in.Err != "" {
			failedInjections++
		}
	}
	b = fmt.Appendf(b, "  injections that could not heal: %d; components that exited by themselves: %d\n", failedInjections, len(r.Crashes))
	b = fmt.Appendf(b, "client: %d sent, %d ok, %d failed, %d unknown (%d retried); %d confirmed, %d rejected, %d unresolved\n",
		r.Client.Sent, r.Ops.OK, r.Ops.Failed, r.Ops.Unknown, r.Client.Retried, r.Client.Confirmed, r.Client.Rejected, r.Client.Unresolved)
	b = fmt.Appendf(b, "duplicates dropped by the broker: %d, absorbed by inboxes: %d", r.Duplicates.Broker, r.Duplicates.InboxTotal())
	for _, k := range slices.Sorted(maps.Keys(r.Duplicates.Inboxes)) {
		b = fmt.Appendf(b, " (%s %d)", k, r.Duplicates.Inboxes[k])
	}
	if len(r.Duplicates.Unexposed) > 0 {
		b = fmt.Appendf(b, "; not exposed by %s", strings.Join(r.Duplicates.Unexposed, ", "))
	}
	b = append(b, '\n')
	if len(r.Duplicates.Lost) > 0 {
		b = fmt.Appendf(b, "  (lower bounds: counts lost: %s)\n", strings.Join(r.Duplicates.Lost, "; "))
	}
	if r.Swept != nil {
		b = fmt.Appendf(b, "swept and kept for the oracle: outbox %v, inbox %v; applied again after their id was swept: %v\n", r.Swept.Outbox, r.Swept.Inbox, r.Swept.Reapplied)
	}
	b = append(b, r.Verdict.String()...)
	if ps := r.Problems(); len(ps) > 0 {
		b = append(b, "chaos verdict: NOT CLEAN\n"...)
		for _, p := range ps {
			b = fmt.Appendf(b, "  - %s\n", p)
		}
	} else {
		b = append(b, "chaos verdict: CLEAN\n"...)
	}
	return string(b)
}
