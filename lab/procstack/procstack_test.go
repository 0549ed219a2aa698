package procstack_test

import (
	"context"
	"testing"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/lab/procstack/proctest"
)

// binary is the alpes command, built once for the package's tests.
var binary string

func TestMain(m *testing.M) { proctest.Main(m, &binary) }

// TestStackSettlesOrdersAndSurvivesARelayKill runs every component as its
// own process, settles orders, kills the relay with SIGKILL mid-traffic,
// starts it again, and checks that every order still settles and that each
// process's usage is measured.
func TestStackSettlesOrdersAndSurvivesARelayKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := procstack.Start(ctx, procstack.Options{Binary: binary, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})

	run := func(seed uint64) loadgen.Summary {
		t.Helper()
		sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: s.BFFURL, Rate: 50, Count: 40, Seed: seed, OutcomeWait: time.Minute})
		if err != nil {
			t.Fatalf("client run %d: %v (%+v)", seed, err, sum)
		}
		if sum.Accepted != 40 || sum.Confirmed+sum.Rejected != 40 {
			t.Fatalf("client run %d: %+v, want 40 accepted and settled", seed, sum)
		}
		return sum
	}
	run(1)

	// Kill the relay while a second run places orders, and bring it back:
	// orders placed meanwhile wait in the outbox and settle afterwards.
	done := make(chan loadgen.Summary, 1)
	go func() { done <- run(2) }()
	if err := s.Relay.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.Relay.Running() {
		t.Fatal("the relay runs after Kill")
	}
	if err := s.Relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the second run did not finish")
	}
	if got := s.Relay.Starts(); got != 2 {
		t.Errorf("relay starts = %d, want 2", got)
	}
	for _, p := range s.Procs() {
		u := p.Usage()
		if u.PeakRSS <= 0 || u.CPU <= 0 {
			t.Errorf("%s usage = %+v, want a peak RSS and CPU time", p.Name, u)
		}
	}
}

// TestFreezeAndThaw checks that a frozen process stops answering and a
// thawed one answers again.
func TestFreezeAndThaw(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := procstack.Start(ctx, procstack.Options{Binary: binary})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	if err := s.Reporting.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := procstack.GetOK(ctx, s.ReportingURL+"/healthz", 300*time.Millisecond); err == nil {
		t.Fatal("a frozen reporting answered /healthz")
	}
	if err := s.Reporting.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := procstack.GetOK(ctx, s.ReportingURL+"/healthz", 10*time.Second); err != nil {
		t.Fatalf("a thawed reporting does not answer: %v", err)
	}
}
