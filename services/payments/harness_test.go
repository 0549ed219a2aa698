package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/servicetest"
	"github.com/alpes/alpes/services/payments"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is one test's world (internal/servicetest): a broker, payments' database
// and a relay carrying its outbox to the broker.
type env struct{ *servicetest.Env }

func newEnv(t *testing.T) *env { return &env{servicetest.New(t, "payments")} }

// running is an payments.Service running in the background.
type running struct {
	*payments.Service
	cancel context.CancelFunc
	done   chan error
}

// startService starts an payments.Service on the test's database and broker.
func (e *env) startService() *running {
	e.T.Helper()
	svc, err := payments.New(payments.Config{
		DB:     e.App,
		Client: e.Client,
		Logger: servicetest.Logger(e.T),
		Tuning: payments.Tuning{RetryBackoff: 10 * time.Millisecond},
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
			t.Errorf("payments Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(servicetest.WaitTimeout):
		t.Fatal("payments did not stop")
	}
}
