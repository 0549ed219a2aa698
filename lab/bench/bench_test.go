package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
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
		FloorOrders: 200, FloorClients: 4,
		ScaleInstances: []int{1, 2}, ScaleCPUShare: 0.05, ScaleOrders: 60, ScalePlaceRate: 60,
		BrokerMessages: 500,
		OutcomeWait:    30 * time.Second,
	}
}

// TestQuickBenchSmoke runs every scenario at tiny sizes and checks that the
// report and its JSON are written and well formed and that the counts add
// up: every order settled, every backlog drained, on the embedded broker and
// on the real Apache Pulsar (which needs Java, and Maven for its first
// fetch), by Debezium Server too (the same). It never looks at a speed.
func TestQuickBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five stacks and two Apache Pulsars")
	}
	// Two Pulsar start-ups take minutes on a busy 2-core machine; Debezium
	// Server's first fetch (about 450 MB, once per machine) and its two JVM
	// starts take one more.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	for _, want := range []string{"# Benchmarks", "## Machine", "## Figures against the targets", "## A.", "**A.** CPU per order ÷ the Postgres floor", "## The Postgres floor", "## B.", "**B‴.** relay ÷ Debezium Server", "### Debezium Server beside the relay (B‴)", "## C.", "## D.", "## E.", "## The brokers on their own", "Apache Pulsar " + got.Machine.Pulsar + " standalone", "## Scaling the consumer stage"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report has no %q", want)
		}
	}
	if got.Throughput == nil || got.Floor == nil || got.Drain == nil || got.Latency == nil || got.Constancy == nil || got.Broker == nil || got.Scale == nil {
		t.Fatalf("a scenario is missing from the JSON: %+v", got)
	}
	checkFloor(t, got.Floor, tinySizes(), 1)
	checkScale(t, got.Scale, tinySizes(), 1)
	for _, f := range []string{"a-ramp.svg", "b-drain.svg", "c-latency.svg", "d-windows.svg", "d-backlog.svg", "scale.svg"} {
		svg, err := os.ReadFile(filepath.Join(out, bench.ChartsDir, f))
		if err != nil || !bytes.HasPrefix(svg, []byte("<svg ")) {
			t.Errorf("chart %s: %v", f, err)
		}
		if !strings.Contains(string(md), "]("+bench.ChartsDir+"/"+f+")") {
			t.Errorf("the report does not show %s", f)
		}
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
			// At least one message per entry; at most the whole backlog in
			// one, and then only if the relay counted its entries at all.
			if run.RelayPerEntry < 1 || run.RelayPerEntry > float64(rep.Drain.Backlog) {
				t.Errorf("B run %d on the %s broker: the relay sent %.2f messages per entry", i, f.Broker, run.RelayPerEntry)
			}
			for name, d := range map[string]bench.DrainTiming{"relay": run.Relay, "text": run.RecvText, "binary": run.RecvBinary, "poll": run.Poll} {
				if d.Seconds <= 0 || d.TxPerSec <= 0 {
					t.Errorf("B run %d on the %s broker: the %s drain has no timing: %+v", i, f.Broker, name, d)
				}
			}
		}
	}

	checkDebezium(t, rep.Drain)

	// C runs first at half of what A′ held, then at the sizes' rate; D at
	// half of A′. When no step held (a tiny first step on a busy machine
	// can miss the accept bound: this test looks at no speed), both run at
	// the sizes' rates, and say so.
	if a := rep.Throughput.Rate.Median; a > 0 {
		if len(rep.Latency) != 2 || rep.Latency[0].Rate != math.Round(a/2) || rep.Latency[0].RateBasis != "half of A′ in this run" {
			t.Fatalf("C: %d rates measured, want half of A′ (%.0f/s) and the sizes' rate: %+v", len(rep.Latency), a, rep.Latency)
		}
		if rep.Constancy.Rate != rep.Latency[0].Rate || rep.Constancy.RateBasis != rep.Latency[0].RateBasis {
			t.Errorf("D ran at %.0f/s (%s), want half of A′", rep.Constancy.Rate, rep.Constancy.RateBasis)
		}
	} else {
		t.Logf("no step of A held: C and D run at the sizes' rates")
		if want := tinySizes().LatencyRates; len(rep.Latency) != len(want) || rep.Latency[0].Rate != want[0] || !strings.HasPrefix(rep.Latency[0].RateBasis, "the run's sizes") {
			t.Fatalf("C ran at %+v, want the sizes' rates %v", rep.Latency, want)
		}
		if want := tinySizes().ConstRate; rep.Constancy.Rate != want || !strings.HasPrefix(rep.Constancy.RateBasis, "the run's sizes") {
			t.Errorf("D ran at %.0f/s (%s), want the sizes' %.0f/s", rep.Constancy.Rate, rep.Constancy.RateBasis, want)
		}
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

// checkDebezium checks B‴'s counts. Where Java and Maven are (CI installs
// both) Debezium Server must have drained the whole backlog on Apache
// Pulsar; on the embedded broker it either did or the report says why not.
// Elsewhere the report must say why it was not measured.
func checkDebezium(t *testing.T, d *bench.Drain) {
	t.Helper()
	_, noJava := exec.LookPath("java")
	_, noMaven := exec.LookPath("mvn")
	for _, f := range []*bench.DrainFigures{&d.DrainFigures, d.Pulsar} {
		if f == nil {
			continue
		}
		if f.DebeziumVersion == "" {
			t.Errorf("B on the %s broker names no Debezium Server version", f.Broker)
		}
		for i, run := range f.Runs {
			z := run.Debezium
			if z == nil {
				if run.DebeziumError == "" || f.DebeziumNotMeasured == "" {
					t.Errorf("B run %d on the %s broker: no Debezium drain and no reason", i, f.Broker)
				}
				if noJava == nil && noMaven == nil {
					t.Errorf("B run %d on the %s broker: Debezium Server not measured: %s", i, f.Broker, run.DebeziumError)
				} else {
					t.Logf("B run %d on the %s broker: Debezium Server not measured: %s", i, f.Broker, run.DebeziumError)
				}
				continue
			}
			if z.Received != int64(d.Backlog) || z.Seconds <= 0 || z.TxPerSec <= 0 || z.CPUMicros["debezium"] <= 0 || z.PeakRSSMiB <= 0 {
				t.Errorf("B run %d on the %s broker: Debezium Server: %d of %d messages, %+v", i, f.Broker, z.Received, d.Backlog, z)
			}
			if z.SampleKey == "" || z.SampleProperties["id"] == "" {
				t.Errorf("B run %d on the %s broker: Debezium Server's message has no key or event id: %q %v", i, f.Broker, z.SampleKey, z.SampleProperties)
			}
		}
		if len(f.DebeziumRatio.Values) > 0 && (f.DebeziumRatio.Median <= 0 || f.DebeziumRSS <= 0) {
			t.Errorf("B‴ on the %s broker: ratio %+v, RSS %.0f MiB", f.Broker, f.DebeziumRatio, f.DebeziumRSS)
		}
	}
}

// TestFloorSmoke runs the Postgres floor alone at tiny sizes, twice, and
// checks its counts: every order asked was written, and each table holds
// the rows the orders written must have left. It never looks at a speed.
func TestFloorSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sizes := tinySizes()
	rep, err := bench.Run(ctx, bench.Options{
		Binary: binary, Runs: 2, Only: []string{bench.ScenarioFloor}, Sizes: sizes, Mode: "smoke", Command: "go test",
		Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Throughput != nil || rep.Drain != nil || rep.Constancy != nil {
		t.Errorf("--only floor ran other scenarios")
	}
	checkFloor(t, rep.Floor, sizes, 2)
	md := string(rep.Markdown())
	for _, want := range []string{"## The Postgres floor", "not judged: A and D did not run"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report has no %q", want)
		}
	}
}

// checkFloor checks the floor's counts: runs, orders written as asked,
// rows in every table it writes as the orders written require, and a cost
// measured for each.
func checkFloor(t *testing.T, f *bench.Floor, sizes bench.Sizes, runs int) {
	t.Helper()
	if f == nil {
		t.Fatal("the floor did not run")
	}
	if len(f.Runs) != runs || f.Clients != sizes.FloorClients || f.Orders != sizes.FloorOrders {
		t.Fatalf("floor: %d runs (want %d), %d clients, %d orders", len(f.Runs), runs, f.Clients, f.Orders)
	}
	for _, db := range []string{"bff", "orders", "payments", "reporting"} {
		if f.Statements[db] == 0 {
			t.Errorf("floor: no statements per order in %s: %v", db, f.Statements)
		}
	}
	for i, run := range f.Runs {
		if run.Asked != int64(sizes.FloorOrders) || run.Written != run.Asked {
			t.Errorf("floor run %d: %d orders written of %d asked (want %d)", i, run.Written, run.Asked, sizes.FloorOrders)
		}
		if len(run.WantRows) != 16 {
			t.Errorf("floor run %d: expectations for %d tables, want 16: %v", i, len(run.WantRows), run.WantRows)
		}
		orders := int64(sizes.FloorOrders + f.WarmUp)
		for table, want := range run.WantRows {
			if got := run.Rows[table]; got != want || got < orders {
				t.Errorf("floor run %d: %s holds %d rows, want %d (at least one per order, %d)", i, table, got, want, orders)
			}
		}
		if run.Cost.Units != run.Written || run.Cost.TotalMicros <= 0 || run.Cost.CPUMicros["postgres"] <= 0 {
			t.Errorf("floor run %d: no cost measured: %+v", i, run.Cost)
		}
		if run.Cost.Xacts["orders"] < 1 {
			t.Errorf("floor run %d: %.2f transactions per order in orders, want at least one", i, run.Cost.Xacts["orders"])
		}
	}
}

// checkScale checks the scaling's counts: a step per number of instances
// with its processes, every run's backlog accepted and drained, the stage's
// CPU measured, every order checked for the order of its applies with none
// out of order, and the oracle clean.
func checkScale(t *testing.T, sc *bench.Scale, sizes bench.Sizes, runs int) {
	t.Helper()
	if sc == nil {
		t.Fatal("the scale scenario did not run")
	}
	if sc.NotMeasured != "" {
		t.Fatalf("scale not measured: %s", sc.NotMeasured)
	}
	if len(sc.Steps) != len(sizes.ScaleInstances) || sc.CPUControl == "" {
		t.Fatalf("scale: %d steps for instances %v, CPU control %q", len(sc.Steps), sizes.ScaleInstances, sc.CPUControl)
	}
	for i, st := range sc.Steps {
		n := sizes.ScaleInstances[i]
		if st.Instances != n || st.Processes != 2*n || len(st.Runs) != runs || st.Speedup <= 0 {
			t.Errorf("scale step %d: %d instances (want %d), %d processes, %d runs, speedup %.2f", i, st.Instances, n, st.Processes, len(st.Runs), st.Speedup)
		}
		for j, run := range st.Runs {
			c := run.Client
			if c.Sent != int64(sizes.ScaleOrders) || c.Accepted != c.Sent {
				t.Errorf("scale, %d instances, run %d: %d of %d orders placed, %d accepted", n, j, c.Sent, sizes.ScaleOrders, c.Accepted)
			}
			if run.DrainSeconds <= 0 || run.Rate <= 0 || run.StageCPU <= 0 || run.ServiceCPU["orders"] <= 0 || run.ServiceCPU["payments"] <= 0 {
				t.Errorf("scale, %d instances, run %d: nothing measured: %+v", n, j, run)
			}
		}
		want := runs * sizes.ScaleOrders
		if o := st.Order; o.Violations != 0 || o.Orders < want || o.Applied["orders"] < want || o.Applied["payments"] < want {
			t.Errorf("scale, %d instances: order of applies: %+v", n, o)
		}
		if st.Oracle == nil || !st.Oracle.OK() {
			t.Errorf("scale, %d instances: the oracle: %v", n, st.Oracle)
		}
	}
}

// testWriter logs each write through t.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
