package chaos_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/lab/chaos"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/lab/procstack/proctest"
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
// a second while every kind of process fault is injected at least once (a
// kill and restart and a freeze of each component, a Postgres crash), in
// an order the seed fixes; then the oracle's verdict must be clean. On a
// real-Pulsar run (broker/brokertest) the stack uses the shared Pulsar
// under a tenant of its own, and every fault but the broker's is injected:
// the shared broker is nobody's to kill (`alpes chaos --pulsar real` kills
// a real Pulsar of its own).
func TestShortChaosSoak(t *testing.T) {
	shortSoak(t, chaos.ProcessFaults(), func(cfg *chaos.Config) {
		cfg.Duration, cfg.Interval = 40*time.Second, 2500*time.Millisecond
		cfg.FreezeMin, cfg.FreezeMax = 500*time.Millisecond, 1500*time.Millisecond
	})
}

// shortSoak runs a soak of a few dozen seconds at 50 orders a second that
// injects each of faults at least once, one at a time unless tune asks
// for pairs, and fails t unless the run is clean: the oracle's verdict,
// every injection healed, every fault injected, the load really ran. tune
// adjusts the configuration before the run; the report is returned for
// the caller's own checks of what the faults did.
func shortSoak(t *testing.T, faults []chaos.Fault, tune func(*chaos.Config)) chaos.Report {
	t.Helper()
	skipWithoutPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := chaos.Config{
		Binary: binary, Duration: 20 * time.Second, Rate: 50, Interval: 1500 * time.Millisecond, Seed: 42,
		FreezeMin: time.Second, FreezeMax: 2 * time.Second,
		QuietTimeout: 2 * time.Minute, Out: &testWriter{t: t},
	}
	if brokertest.Real() {
		b := brokertest.Start(t)
		cfg.PulsarURL, cfg.PulsarAdminURL, cfg.Tenant = b.ServiceURL, b.AdminURL, "t-"+brokertest.UniqueName(t)
		faults = slices.DeleteFunc(slices.Clone(faults), func(f chaos.Fault) bool { return f.Target == "broker" })
	}
	cfg.Faults = faults
	if tune != nil {
		tune(&cfg)
	}
	if cfg.MinInjections == 0 {
		cfg.MinInjections = len(faults)
	}
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
	if minOK := int(cfg.Rate * cfg.Duration.Seconds() / 2); rep.Ops.OK < minOK {
		t.Errorf("only %d orders ok, want %d: the load did not run", rep.Ops.OK, minOK)
	}
	if !rep.Verdict.OK() {
		t.Errorf("verdict:\n%s", rep.Verdict)
	}
	return rep
}

// requireObserved fails t unless every injection of a fault that which
// selects observed key above zero: the proof that the fault struck.
func requireObserved(t *testing.T, rep chaos.Report, key string, which func(chaos.Fault) bool) {
	t.Helper()
	for _, in := range rep.Injections {
		if which(in.Fault) && in.Observed[key] <= 0 {
			t.Errorf("%s observed %s=%d, want more than 0: the fault did not strike (observed %v)", in.Fault, key, in.Observed[key], in.Observed)
		}
	}
}

// action selects the faults of action a.
func action(a chaos.Action) func(chaos.Fault) bool {
	return func(f chaos.Fault) bool { return f.Action == a }
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
