package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/chaos"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/procstack"
)

type chaosCmd struct {
	Duration       time.Duration `help:"How long the load runs while faults are injected." default:"15m"`
	Rate           float64       `help:"Orders per second, open loop." default:"50"`
	Interval       time.Duration `help:"Mean pause between injections (each drawn from half to one and a half times it)." default:"6s"`
	Seed           uint64        `help:"Seed of the faults, their order and pauses, and the orders (0: from the clock, printed)."`
	FreezeMin      time.Duration `help:"Shortest SIGSTOP of a frozen component." default:"1s"`
	FreezeMax      time.Duration `help:"Longest SIGSTOP of a frozen component." default:"5s"`
	QuietTimeout   time.Duration `help:"How long the oracle waits for the system to go quiet after the load." default:"3m" aliases:"settle-timeout"`
	MinOrders      int           `help:"Accepted orders the run must see to count (0: half of rate × duration)."`
	MinInjections  int           `help:"Faults to inject at least, running the load past --duration if need be."`
	Dir            string        `help:"Keep the stack's data and logs here (default: a temporary directory, removed)." type:"path"`
	Out            string        `help:"Write the run's record (injections, counts, verdict) as JSON to this file." type:"path"`
	Pulsar         string        `help:"The broker process: embedded (alpes broker) or real (Apache Pulsar standalone, killed and frozen like the rest; fetched once with Maven)." enum:"embedded,real" default:"embedded"`
	PulsarCacheDir string        `help:"Where the real Pulsar's distribution is kept; default: the user's cache directory under alpes." placeholder:"DIR"`

	Faults           []string      `help:"The faults to deal, as ACTION TARGET; repeat or separate with commas (default: all of them): ${chaos_faults}." placeholder:"FAULT"`
	Pairs            bool          `help:"Deal the faults two at a time, held and healed together."`
	Instances        int           `help:"Processes of orders and of payments when churn faults are dealt." default:"2"`
	WalSenderTimeout time.Duration `help:"Postgres's wal_sender_timeout in the soak's cluster." default:"10s"`
	RequestTimeout   time.Duration `help:"The client's timeout of one POST." default:"10s"`
	LongFreeze       time.Duration `help:"How long a long-freeze stops its process (0: one and a half times the longer of --wal-sender-timeout and --request-timeout)."`
	LinkLatency      time.Duration `help:"The delay of a latency fault on a link." default:"200ms"`
	OutboxRetention  time.Duration `help:"The relay's --outbox-retention during the soak, short so that the sweep runs under faults (0: the relay's default); rows it sweeps are kept aside for the oracle." default:"30s"`
	OutboxSweepBatch int           `help:"The relay's --outbox-sweep-batch during the soak (0: the relay's default)." default:"100"`
	OutboxSweepEvery time.Duration `help:"How often the relay sweeps the outbox during the soak (0: the relay's default, every minute)." default:"10s"`
	InboxRetention   time.Duration `help:"Every consumer's --inbox-retention during the soak, shorter than production allows (0: the default); rows swept are kept aside for the oracle." default:"2m"`
	InboxSweepEvery  time.Duration `help:"Every consumer's --inbox-sweep-interval during the soak (0: the default)." default:"10s"`
}

// chaosFaultNames lists every fault --faults accepts.
func chaosFaultNames() string {
	var names []string
	for _, f := range chaos.AllFaults() {
		names = append(names, f.String())
	}
	return strings.Join(names, ", ")
}

// faults reads --faults.
func (c *chaosCmd) faults() ([]chaos.Fault, error) {
	var fs []chaos.Fault
	for _, s := range c.Faults {
		f, err := chaos.ParseFault(s)
		if err != nil {
			return nil, fmt.Errorf("--faults: %w", err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// sweeps reads the retention flags; nil when none is set.
func (c *chaosCmd) sweeps() *procstack.Sweeps {
	w := procstack.Sweeps{OutboxRetention: c.OutboxRetention, OutboxBatch: c.OutboxSweepBatch, OutboxInterval: c.OutboxSweepEvery,
		InboxRetention: c.InboxRetention, InboxInterval: c.InboxSweepEvery}
	if w == (procstack.Sweeps{}) {
		return nil
	}
	return &w
}

// Run runs the soak, prints each injection as it happens and the verdict at
// the end, and fails when the run is not clean: the oracle found a
// violation, a component exited by itself, an injection could not heal, or
// the run saw too little (chaos.Report.Err).
func (c *chaosCmd) Run(ctx context.Context, e env) error {
	seed := c.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	faults, err := c.faults()
	if err != nil {
		return err
	}
	cfg := chaos.Config{
		Duration: c.Duration, Rate: c.Rate, Interval: c.Interval, Seed: seed,
		FreezeMin: c.FreezeMin, FreezeMax: c.FreezeMax, QuietTimeout: c.QuietTimeout,
		MinOrders: c.MinOrders, MinInjections: c.MinInjections,
		Dir: c.Dir, Out: e.stdout, Logger: e.log, Pulsar: c.Pulsar,
		Faults: faults, Pairs: c.Pairs, Instances: c.Instances, WalSenderTimeout: c.WalSenderTimeout,
		RequestTimeout: c.RequestTimeout, LongFreeze: c.LongFreeze, LinkLatency: c.LinkLatency, Sweeps: c.sweeps(),
	}
	if c.Pulsar == devstack.PulsarReal {
		flags := pulsarFlags{Version: pulsarstandalone.DefaultVersion, CacheDir: c.PulsarCacheDir}
		pc, err := flags.config(ctx, e)
		if err != nil {
			return err
		}
		cfg.PulsarDistribution = pc.Distribution
	}
	rep, err := chaos.Run(ctx, cfg)
	fmt.Fprint(e.stdout, rep.Summary())
	if c.Out != "" {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(c.Out, append(b, '\n'), 0o644)
		}
		if jerr != nil {
			err = errors.Join(err, fmt.Errorf("writing the record: %w", jerr))
		}
	}
	return err
}
