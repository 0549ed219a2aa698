package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
)

type clientCmd struct {
	BFFURL      string        `name:"bff-url" help:"Base URL of the bff." default:"${bff_url}"`
	Rate        float64       `help:"Orders per second, open loop." default:"20"`
	Duration    time.Duration `help:"How long to place orders (0: until --count)." default:"30s"`
	Count       int           `help:"How many orders to place (0: until --duration)."`
	MaxInFlight int           `help:"Orders placed and not yet settled, at most." default:"2000"`
	OutcomeWait time.Duration `help:"How long to wait for one order's outcome." default:"60s"`
	Seed        uint64        `help:"Seed of the fake customers and baskets." default:"1"`
	JSON        bool          `help:"Print the summary as JSON only."`
}

func (c *clientCmd) Run(ctx context.Context, e env) error {
	cfg := loadgen.Config{
		BFFURL: c.BFFURL, Rate: c.Rate, Duration: c.Duration, Count: c.Count,
		MaxInFlight: c.MaxInFlight, OutcomeWait: c.OutcomeWait, Seed: c.Seed, Logger: e.log,
	}
	if !c.JSON {
		cfg.Progress = os.Stderr
	}
	sum, err := loadgen.Run(ctx, cfg)
	if c.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
	} else if sum.Sent > 0 {
		fmt.Fprintf(e.stdout, "%d orders in %.1fs (%.0f/s): %d accepted, %d refused, %d failed; %d confirmed, %d rejected, %d unresolved\n",
			sum.Sent, sum.DurationSeconds, sum.RatePerSec, sum.Accepted, sum.Refused, sum.Failed, sum.Confirmed, sum.Rejected, sum.Unresolved)
		for _, l := range []struct {
			name string
			l    loadgen.Latency
		}{{"accepted (202)", sum.AcceptLatency}, {"final outcome", sum.OutcomeLatency}} {
			fmt.Fprintf(e.stdout, "%-15s p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  p99.9 %.1f ms  max %.1f ms\n",
				l.name, l.l.P50, l.l.P90, l.l.P99, l.l.P999, l.l.Max)
		}
	}
	return err
}
