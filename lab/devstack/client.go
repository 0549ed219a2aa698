package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
)

// runClient places fake orders at the bff until ctx ends, in runs of a
// minute, logging each run's summary.
func runClient(ctx context.Context, bffURL string, cfg Config, log *slog.Logger) error {
	rate := cfg.ClientRate
	if rate <= 0 {
		rate = 5
	}
	for seed := uint64(1); ctx.Err() == nil; seed++ {
		sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: bffURL, Rate: rate, Duration: time.Minute, Seed: seed, Logger: log})
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, loadgen.ErrUnresolved) {
			return fmt.Errorf("the client found orders without an outcome: %w", err)
		}
		if err != nil {
			log.Warn("client run failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		log.Info("client", "orders", sum.Sent, "confirmed", sum.Confirmed, "rejected", sum.Rejected,
			"p99_accept_ms", sum.AcceptLatency.P99, "p99_outcome_ms", sum.OutcomeLatency.P99)
	}
	return nil
}
