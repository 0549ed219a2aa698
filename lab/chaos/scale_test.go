package chaos_test

import (
	"testing"

	"github.com/alpes/alpes/lab/chaos"
)

// TestRelayFailover runs a standby relay beside the active one and kills
// whichever streams, again and again: the standby must take every source
// over on its advisory lock (takeover_ms measured each time), the killed
// relay comes back as the new standby, and the oracle must find nothing.
func TestRelayFailover(t *testing.T) {
	rep := shortSoak(t, []chaos.Fault{{Action: chaos.Failover, Target: "relay"}}, func(cfg *chaos.Config) {
		cfg.MinInjections = 4
	})
	requireObserved(t, rep, "takeover_ms", action(chaos.Failover))
}

// TestChurnWhileKeySharedRebalances runs two instances each of orders and
// payments on their Key_Shared subscriptions and kills both instances of a
// service in turn, each right after the one before came back, while the
// broker hands the keys around. The oracle must find nothing: no effect
// twice, per-order order kept through the rebalances, nothing parked; and
// every instance must have been killed.
//
// Before the embedded broker placed keys as Pulsar does (a moved key held
// back until its earlier holder acknowledged), this failed every time: an
// orders instance got a PaymentProcessed for an order that the other
// instance had committed but that Postgres did not show it yet (a commit
// is decodable once its WAL is flushed, a moment before other sessions see
// it), and parked it as "for an order orders never stored".
func TestChurnWhileKeySharedRebalances(t *testing.T) {
	rep := shortSoak(t, []chaos.Fault{{Action: chaos.Churn, Target: "orders"}, {Action: chaos.Churn, Target: "payments"}}, nil)
	for _, in := range rep.Injections {
		if in.Observed["instances_killed"] != 2 {
			t.Errorf("%s killed %d instances, want both (observed %v)", in.Fault, in.Observed["instances_killed"], in.Observed)
		}
	}
}
