package procstack_test

import (
	"context"
	"testing"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/procstack"
)

// TestFaultProxiesInstancesAndStandby starts a stack whose components
// reach Postgres and the broker through fault proxies, with two instances
// of orders and payments and a standby relay, and checks that orders
// settle, that every component's traffic crossed the proxies, and that
// the extra processes run under their names.
func TestFaultProxiesInstancesAndStandby(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := procstack.Start(ctx, procstack.Options{Binary: binary, FaultProxies: true, Instances: 2, RelayStandby: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: s.BFFURL, Rate: 50, Count: 40, Seed: 1, OutcomeWait: time.Minute})
	if err != nil || sum.Confirmed+sum.Rejected != 40 {
		t.Fatalf("client: %+v, %v; want 40 orders settled", sum, err)
	}
	if st := s.PostgresLink.Stats(); st.Accepted == 0 || st.ToServer == 0 {
		t.Errorf("nothing crossed the proxy before postgres: %+v", st)
	}
	if st := s.BrokerLink.Stats(); st.Accepted == 0 || st.ToClient == 0 {
		t.Errorf("nothing crossed the proxy before the broker: %+v", st)
	}
	for _, name := range []string{"relay-2", "orders-2", "payments-2"} {
		if p := s.Proc(name); p == nil || !p.Running() {
			t.Errorf("%s is not running", name)
		}
	}
	if s.Standby == nil || s.Standby.Name != "relay-2" {
		t.Errorf("standby = %v, want relay-2", s.Standby)
	}
}
