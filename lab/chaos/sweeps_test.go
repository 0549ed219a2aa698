package chaos_test

import (
	"testing"
	"time"

	"github.com/alpes/alpes/lab/chaos"
	"github.com/alpes/alpes/lab/procstack"
)

// TestSweepsUnderFaults runs the relay's outbox sweep and every consumer's
// inbox sweep with retentions of seconds while the relay, a consumer and
// Postgres are killed, crashed and cut off: rows are deleted in small
// batches throughout. What the sweeps delete is kept aside and given back
// to the oracle after the load (sweeps.go), which must then find nothing:
// no event missed, none applied twice, although the ids of most of them
// left the inboxes. Both sweeps must really have deleted rows, and no
// event may have been applied again after its id was swept.
func TestSweepsUnderFaults(t *testing.T) {
	faults := []chaos.Fault{
		{Action: chaos.Kill, Target: "relay"}, {Action: chaos.Kill, Target: "payments"},
		{Action: chaos.Crash, Target: chaos.Postgres}, {Action: chaos.Terminate, Target: chaos.Walsenders},
		{Action: chaos.Reset, Target: chaos.PostgresLink}, {Action: chaos.Freeze, Target: "orders"},
	}
	rep := shortSoak(t, faults, func(cfg *chaos.Config) {
		cfg.Sweeps = &procstack.Sweeps{OutboxRetention: 2 * time.Second, OutboxBatch: 25, InboxRetention: 4 * time.Second, InboxInterval: time.Second}
	})
	if rep.Swept == nil {
		t.Fatal("no record of what the sweeps deleted")
	}
	for _, db := range []string{"bff", "orders", "payments"} {
		if rep.Swept.Outbox[db] == 0 {
			t.Errorf("the relay swept nothing from %s's outbox", db)
		}
	}
	for _, db := range []string{"bff", "orders", "payments", "reporting"} {
		if rep.Swept.Inbox[db] == 0 {
			t.Errorf("%s's inbox sweep deleted nothing", db)
		}
	}
	if len(rep.Swept.Reapplied) > 0 {
		t.Errorf("events applied again after their ids were swept: %v", rep.Swept.Reapplied)
	}
}
