package orders_test

import (
	"context"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/servicetest"
	"github.com/alpes/alpes/services/orders"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is one test's world (internal/servicetest): a broker, orders' database
// and a relay carrying its outbox to the broker.
type env struct{ *servicetest.Env }

func newEnv(t *testing.T) *env { return &env{servicetest.New(t, "orders")} }

// running is an orders Service running in the background.
type running struct {
	*orders.Service
	cancel context.CancelFunc
	done   chan error
}

// startService starts an orders Service on the test's database and broker.
func (e *env) startService() *running {
	e.T.Helper()
	svc, err := orders.New(orders.Config{
		DB:     e.App,
		Client: e.Client,
		Logger: servicetest.Logger(e.T),
		Tuning: orders.Tuning{RetryBackoff: 10 * time.Millisecond},
	})
	if err != nil {
		e.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Service: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	e.T.Cleanup(func() { r.stop(e.T) })
	return r
}

// stop ends the service and checks Run returned nil; stopping twice is harmless.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("orders Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(servicetest.WaitTimeout):
		t.Fatal("orders did not stop")
	}
}
