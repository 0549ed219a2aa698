package orders_test

import (
	"testing"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/services/servicetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is one test's world (services/servicetest): a broker, orders' database
// and a relay carrying its outbox to the broker.
type env struct{ *servicetest.Env }

func newEnv(t *testing.T) *env { return &env{servicetest.New(t, "orders")} }

// startService starts orders' Service on the test's database and broker,
// stopped (and checked) when the test ends.
func (e *env) startService() *servicetest.Running { return e.StartService("orders", e.App) }
