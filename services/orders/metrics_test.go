package orders_test

import (
	"testing"

	"github.com/alpes/alpes/migrations"
)

// TestProcessServesMetricsAndReadiness: orders, run as its command runs
// it, is ready once subscribed; after applying an event its /metrics
// serves the runtime's families, its Pulsar client's, its inbox counts and
// latencies; with its database gone, /readyz answers 503.
func TestProcessServesMetricsAndReadiness(t *testing.T) {
	e := newEnv(t)
	pool := e.DB.PoolAs(t, migrations.ServiceRole("orders")) // the service's own, closed by the check
	e.CheckConsumerProcess("orders", pool, e.Topics.OrderCommands, func() { e.send(placeOrder("cust-1", "AXE-ICE-50", 1)) })
}
