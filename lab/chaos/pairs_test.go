package chaos_test

import (
	"testing"

	"github.com/alpes/alpes/lab/chaos"
)

// TestFaultsTwoAtOnce deals faults in pairs held and healed together: a
// process killed while a link is cut, walsenders ended while Postgres's
// link is a blackhole, Postgres crashed while the broker's link resets,
// and so on as the seed deals them. Every injection must name its partner,
// heal, and leave the oracle nothing to find.
func TestFaultsTwoAtOnce(t *testing.T) {
	faults := []chaos.Fault{
		{Action: chaos.Kill, Target: "relay"}, {Action: chaos.Crash, Target: chaos.Postgres},
		{Action: chaos.Terminate, Target: chaos.Walsenders}, {Action: chaos.Blackhole, Target: chaos.PostgresLink},
		{Action: chaos.Reset, Target: chaos.BrokerLink}, {Action: chaos.LoseReplies, Target: chaos.BrokerLink},
		{Action: chaos.Freeze, Target: "orders"}, {Action: chaos.Kill, Target: "payments"},
	}
	rep := shortSoak(t, faults, func(cfg *chaos.Config) { cfg.Pairs = true })
	pairs := 0
	for _, in := range rep.Injections {
		if in.With == "" {
			t.Errorf("%s was injected alone", in.Fault)
			continue
		}
		pairs++
	}
	if pairs < len(faults) {
		t.Errorf("%d injections in pairs, want every fault at least once", pairs)
	}
}
