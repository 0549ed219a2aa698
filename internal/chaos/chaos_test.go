package chaos_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/brokertest"
	"github.com/alpes/alpes/internal/chaos"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/procstack"
	"github.com/alpes/alpes/internal/procstack/proctest"
)

// binary is the alpes command, built once for the package's tests: the
// components run as its children, normal binaries even under -race.
var binary string

func TestMain(m *testing.M) { proctest.Main(m, &binary) }

func skipWithoutPostgres(t *testing.T) {
	t.Helper()
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
}

// TestShortChaosSoak is the CI-sized soak: 40 seconds of load at 50 orders
// a second while every kind of fault is injected at least once (a kill and
// restart and a freeze of each component, a Postgres crash), in an order
// the seed fixes; then the oracle's verdict must be clean. On a real-Pulsar
// run (internal/brokertest) the stack uses the shared Pulsar under a tenant
// of its own, and every fault but the broker's is injected: the shared
// broker is nobody's to kill (`alpes chaos --pulsar real` kills a real
// Pulsar of its own).
func TestShortChaosSoak(t *testing.T) {
	skipWithoutPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := chaos.Config{
		Binary: binary, Duration: 40 * time.Second, Rate: 50, Interval: 2500 * time.Millisecond, Seed: 42,
		FreezeMin: 500 * time.Millisecond, FreezeMax: 1500 * time.Millisecond,
		SettleTimeout: 2 * time.Minute, Out: &testWriter{t: t},
	}
	faults := chaos.AllFaults()
	if brokertest.Real() {
		b := brokertest.Start(t)
		cfg.PulsarURL, cfg.PulsarAdminURL, cfg.Tenant = b.ServiceURL, b.AdminURL, "t-"+brokertest.UniqueName(t)
		faults = slices.DeleteFunc(faults, func(f chaos.Fault) bool { return f.Target == "broker" })
	}
	cfg.MinInjections = len(faults)
	rep, err := chaos.Run(ctx, cfg)
	t.Log("\n" + rep.Summary())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range faults {
		if rep.ByKind[f.String()] == 0 {
			t.Errorf("%s was never injected", f)
		}
	}
	for _, in := range rep.Injections {
		if in.Err != "" {
			t.Errorf("injection %s did not heal: %s", in.Fault, in.Err)
		}
	}
	if rep.Ops.OK < 1000 {
		t.Errorf("only %d orders ok: the load did not run", rep.Ops.OK)
	}
	if !rep.Verdict.OK() {
		t.Errorf("verdict:\n%s", rep.Verdict)
	}
}

// testWriter logs each line written to it.
type testWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf strings.Builder
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		s := w.buf.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(s[:i])
		w.buf.Reset()
		w.buf.WriteString(s[i+1:])
	}
}

// startStack starts the system as processes of the test's alpes binary and
// stops it when the test ends.
func startStack(t *testing.T, ctx context.Context, opts procstack.Options) *procstack.Stack {
	t.Helper()
	opts.Binary = binary
	s, err := procstack.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	return s
}
