package chaos_test

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/procstack"
)

// TestConsumersCrashAroundTheirCommits is FAULTS rows 7 and 8 with real
// processes and no timing luck: each consumer is armed to SIGKILL itself at
// a named point of its inbox, either with a batch applied and not yet
// committed (row 7: the batch is redelivered and applied by the next
// incarnation) or committed and not yet acknowledged (row 8: the batch is
// redelivered, found in the inbox, acknowledged, not applied again). Each is
// started again without the failpoint once it has died, and the oracle then
// finds every order applied exactly once in every consumer.
func TestConsumersCrashAroundTheirCommits(t *testing.T) {
	skipWithoutPostgres(t)
	armed := map[string]string{
		"orders":    "inbox/before-commit=crash@3",
		"payments":  "inbox/after-commit=crash@3",
		"reporting": "inbox/after-commit=crash@4",
		"bff":       "inbox/before-commit=crash@4",
	}
	env := map[string][]string{}
	for name, spec := range armed {
		env[name] = []string{"ALPES_FAILPOINTS=" + spec}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startStack(t, ctx, procstack.Options{Env: env})

	var ledger loadgen.Ledger
	var load sync.WaitGroup
	var sum loadgen.Summary
	var loadErr error
	load.Go(func() {
		sum, loadErr = loadgen.Run(ctx, loadgen.Config{
			BFFURL: s.BFFURL, Rate: 50, Count: 200, Seed: 7, OutcomeWait: 2 * time.Minute, Ledger: &ledger,
		})
	})

	for _, p := range []*procstack.Proc{s.Orders, s.Payments, s.Reporting, s.BFF} {
		select {
		case <-p.Exited():
		case <-ctx.Done():
			t.Fatalf("%s armed with %s never reached it", p.Name, armed[p.Name])
		}
		var exit *exec.ExitError
		if err := p.ExitErr(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s ended with %v, want its failpoint's SIGKILL; log:\n%s", p.Name, err, p.LogTail(20))
		}
		t.Logf("%s died at %s; starting it again without", p.Name, armed[p.Name])
		p.SetEnv(nil)
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	load.Wait()
	if loadErr != nil {
		t.Fatalf("load: %v (%+v)", loadErr, sum)
	}

	v, err := oracle.Check(ctx, s.OracleConfig(ledger.Ops(), 2*time.Minute, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client %+v\n%s", sum, v)
	if !v.OK() {
		t.Errorf("the oracle found violations after consumers crashed around their commits")
	}
	if c := ledger.Counts(); c.OK < 150 {
		t.Errorf("only %d of 200 orders ok (%+v): too few to have exercised every consumer", c.OK, c)
	}
}
