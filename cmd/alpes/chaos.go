package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/alpes/alpes/internal/chaos"
	"github.com/alpes/alpes/internal/devstack"
	"github.com/alpes/alpes/internal/pulsarstandalone"
)

type chaosCmd struct {
	Duration       time.Duration `help:"How long the load runs while faults are injected." default:"15m"`
	Rate           float64       `help:"Orders per second, open loop." default:"50"`
	Interval       time.Duration `help:"Mean pause between injections (each drawn from half to one and a half times it)." default:"6s"`
	Seed           uint64        `help:"Seed of the faults, their order and pauses, and the orders (0: from the clock, printed)."`
	FreezeMin      time.Duration `help:"Shortest SIGSTOP of a frozen component." default:"1s"`
	FreezeMax      time.Duration `help:"Longest SIGSTOP of a frozen component." default:"5s"`
	SettleTimeout  time.Duration `help:"How long the oracle waits for the system to settle after the load." default:"3m"`
	MinOrders      int           `help:"Accepted orders the run must see to count (0: half of rate × duration)."`
	MinInjections  int           `help:"Faults to inject at least, running the load past --duration if need be."`
	Dir            string        `help:"Keep the stack's data and logs here (default: a temporary directory, removed)." type:"path"`
	Out            string        `help:"Write the run's record (injections, counts, verdict) as JSON to this file." type:"path"`
	Pulsar         string        `help:"The broker process: embedded (alpes broker) or real (Apache Pulsar standalone, killed and frozen like the rest; fetched once with Maven)." enum:"embedded,real" default:"embedded"`
	PulsarCacheDir string        `help:"Where the real Pulsar's distribution is kept; default: the user's cache directory under alpes." placeholder:"DIR"`
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
	cfg := chaos.Config{
		Duration: c.Duration, Rate: c.Rate, Interval: c.Interval, Seed: seed,
		FreezeMin: c.FreezeMin, FreezeMax: c.FreezeMax, SettleTimeout: c.SettleTimeout,
		MinOrders: c.MinOrders, MinInjections: c.MinInjections,
		Dir: c.Dir, Out: e.stdout, Logger: e.log, Pulsar: c.Pulsar,
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
