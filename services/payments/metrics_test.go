package payments_test

import (
	"testing"

	"github.com/alpes/alpes/migrations"
)

// TestProcessServesMetricsAndReadiness: payments, run as its command runs
// it, is ready once subscribed; after applying an event its /metrics
// serves the runtime's families, its Pulsar client's, its inbox counts and
// latencies; with its database gone, /readyz answers 503.
func TestProcessServesMetricsAndReadiness(t *testing.T) {
	e := newEnv(t)
	pool := e.DB.PoolAs(t, migrations.ServiceRole("payments")) // the service's own, closed by the check
	e.CheckConsumerProcess("payments", pool, e.Topics.OrderEvents, func() {
		order := orderPlaced("cust-1", 1200)
		e.send(order.GetOrderId(), order)
	})
}
