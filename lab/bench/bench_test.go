package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/lab/bench"
	"github.com/alpes/alpes/lab/procstack/proctest"
)

// binary is the alpes command, built once for the package's tests (without
// the race detector: the children are the system under measurement).
var binary string

func TestMain(m *testing.M) { proctest.Main(m, &binary) }

// tinySizes run every scenario in seconds: a few hundred transactions, a
// few seconds of load.
func tinySizes() bench.Sizes {
	return bench.Sizes{
		RampStart: 20, RampFactor: 2, RampMax: 40, RampStep: 2 * time.Second,
		Backlog: 300, PollBatch: 100,
		LatencyRates: []float64{50}, LatencyWarmUp: time.Second, LatencyDuration: 2 * time.Second,
		ConstRate: 20, ConstDuration: 4 * time.Second, ConstWindow: 2 * time.Second, ConstRetention: 10 * time.Second,
		BrokerMessages: 500,
		OutcomeWait:    30 * time.Second,
	}
}

// TestQuickBenchSmoke runs every scenario at tiny sizes and checks that the
// report and its JSON are written and well formed and that the counts add
// up: every order settled, every backlog drained, on the embedded broker and
// on the real Apache Pulsar (which needs Java, and Maven for its first
// fetch). It never looks at a speed.
func TestQuickBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five stacks and two Apache Pulsars")
	}
	// Two Pulsar start-ups take minutes on a busy 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out := t.TempDir()
	rep, err := bench.Run(ctx, bench.Options{
		Binary: binary, Out: out, Runs: 1, Sizes: tinySizes(), Mode: "smoke", Command: "go test",
		Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}

	js, err := os.ReadFile(filepath.Join(out, bench.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var got bench.Report
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the JSON report does not decode: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(out, bench.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Benchmarks", "## Machine", "## Figures against the targets", "## A.", "## B.", "## C.", "## D.", "## E.", "## The brokers on their own", "Apache Pulsar " + got.Machine.Pulsar + " standalone"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report has no %q", want)
		}
	}
	if got.Throughput == nil || got.Drain == nil || got.Latency == nil || got.Constancy == nil || got.Broker == nil {
		t.Fatalf("a scenario is missing from the JSON: %+v", got)
	}

	for i, run := range rep.Throughput.Runs {
		if len(run.Steps) == 0 {
			t.Errorf("A run %d has no steps", i)
		}
		for _, s := range run.Steps {
			c := s.Summary
			if c.Sent == 0 || c.Sent != c.Accepted+c.Refused+c.Failed || c.Accepted != c.Confirmed+c.Rejected+c.Unresolved {
				t.Errorf("A at %.0f/s: counts do not add up: %+v", s.Rate, c)
			}
			if c.Unresolved != 0 || c.Refused != 0 || c.Failed != 0 {
				t.Errorf("A at %.0f/s: not every order settled: %+v", s.Rate, c)
			}
		}
	}

	if rep.Drain.Pulsar == nil {
		t.Fatal("B did not run on Apache Pulsar")
	}
	for _, f := range []bench.DrainFigures{rep.Drain.DrainFigures, *rep.Drain.Pulsar} {
		if len(f.Runs) != 1 || f.BrokerRSS <= 0 || f.RelayRSS <= 0 || len(f.RatioBinary.Values) != 1 {
			t.Errorf("B on the %s broker: %d runs, broker RSS %.0f MiB, relay RSS %.0f MiB, ratio %+v", f.Broker, len(f.Runs), f.BrokerRSS, f.RelayRSS, f.RatioBinary)
		}
		for i, run := range f.Runs {
			if run.Published != int64(rep.Drain.Backlog) || run.Left != 0 {
				t.Errorf("B run %d on the %s broker: the poller published %d of %d and left %d", i, f.Broker, run.Published, rep.Drain.Backlog, run.Left)
			}
			for name, d := range map[string]bench.DrainTiming{"relay": run.Relay, "text": run.RecvText, "binary": run.RecvBinary, "poll": run.Poll} {
				if d.Seconds <= 0 || d.TxPerSec <= 0 {
					t.Errorf("B run %d on the %s broker: the %s drain has no timing: %+v", i, f.Broker, name, d)
				}
			}
		}
	}

	if len(rep.Latency) != 1 {
		t.Fatalf("C: %d rates measured, want 1", len(rep.Latency))
	}
	for i, run := range rep.Latency[0].Runs {
		if run.Client.Accepted == 0 || run.Client.Unresolved != 0 {
			t.Errorf("C run %d: %+v", i, run.Client)
		}
		for db, c := range run.Consumers {
			if c.Messages == 0 {
				t.Errorf("C run %d: %s applied nothing in the window", i, db)
			}
		}
	}

	c := rep.Constancy
	if len(c.Windows) != 2 || c.Accepted == 0 || c.Settled != c.Accepted || c.Unresolved != 0 || c.Refused != 0 {
		t.Errorf("D: %d windows, %d accepted, %d settled, %d unresolved, %d refused", len(c.Windows), c.Accepted, c.Settled, c.Unresolved, c.Refused)
	}
	if len(c.PeakRSS) == 0 || c.PeakRSS["relay"] <= 0 {
		t.Errorf("D: no peak RSS: %v", c.PeakRSS)
	}

	for name, bc := range rep.Broker.Cases {
		if bc.Produce.Median <= 0 || bc.Consume.Median <= 0 {
			t.Errorf("embedded broker %s: %+v", name, bc)
		}
	}
	p := rep.Broker.Pulsar
	if p == nil || len(p.Cases) != 2 || len(p.Runs) != 1 || p.PeakRSS <= 0 {
		t.Fatalf("the broker scenario on Apache Pulsar: %+v", p)
	}
	for name, bc := range p.Cases {
		if bc.Produce.Median <= 0 || bc.Consume.Median <= 0 || bc.BrokerCPU == nil || len(bc.BrokerCPU.Values) != 1 {
			t.Errorf("Apache Pulsar %s: %+v", name, bc)
		}
	}
}

// testWriter logs each write through t.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
