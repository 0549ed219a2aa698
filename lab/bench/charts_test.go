package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alpes/alpes/lab/loadgen"
)

// svgCounts parses an SVG document and counts its elements by name; a
// document that is not well-formed XML fails the test.
func svgCounts(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return counts
		}
		if err != nil {
			t.Fatalf("not well-formed SVG: %v\n%s", err, svg)
		}
		if el, ok := tok.(xml.StartElement); ok {
			counts[el.Name.Local]++
		}
	}
}

// TestChartsDrawTheReportsData draws the charts of a report made up for the
// test and checks each is well-formed SVG carrying its data: one point per
// ramp step and series, one bar per label and series, the targets' lines,
// and names that need escaping escaped.
func TestChartsDrawTheReportsData(t *testing.T) {
	step := func(rate, accept, outcome float64) RampStep {
		return RampStep{Rate: rate, Summary: loadgen.Summary{AcceptLatency: loadgen.Latency{P99: accept}, OutcomeLatency: loadgen.Latency{P99: outcome}}}
	}
	rep := &Report{
		Throughput: &Throughput{Criteria: rampCriteria, Runs: []RampRun{{Steps: []RampStep{step(100, 3, 40), step(200, 9, 80), step(400, 70, 900)}}}},
		Drain: &Drain{DrainFigures: DrainFigures{Broker: "embedded", Relay: Spread{Median: 30000}, RecvText: Spread{Median: 50000},
			RecvBinary: Spread{Median: 60000}, Poll: Spread{Median: 25000}}},
		Latency: []*Latency{{Rate: 150, P50: map[string]Spread{"bff": {Median: 2}, "orders": {Median: 3}},
			P99: map[string]Spread{"bff": {Median: 9}, "orders": {Median: 12}}, P999: map[string]Spread{"bff": {Median: 20}, "orders": {Median: 30}}}},
		Constancy: &Constancy{Rate: 150, DurationSeconds: 600, WindowSeconds: 60,
			Windows: []ConstWindow{{Throughput: 149}, {Throughput: 151}},
			Samples: []ConstSample{{Seconds: 1, OutboxRows: 2000, RelaySeconds: 0.1}, {Seconds: 2, OutboxRows: 3000, RelaySeconds: 0.2}}},
	}
	charts := rep.charts()
	byFile := map[string]chart{}
	for _, c := range charts {
		byFile[c.file] = c
	}
	if len(byFile) != 5 {
		t.Fatalf("charts %v, want A's ramp, B, C and D's two", len(byFile))
	}
	ramp := svgCounts(t, byFile["a-ramp.svg"].svg)
	if ramp["circle"] != 6 || ramp["polyline"] != 2 {
		t.Errorf("A's ramp: %d points in %d lines, want 3 steps × 2 series", ramp["circle"], ramp["polyline"])
	}
	if s := string(byFile["a-ramp.svg"].svg); !strings.Contains(s, "accept target") || !strings.Contains(s, "outcome target") {
		t.Errorf("A's ramp lacks the target lines")
	}
	if got := svgCounts(t, byFile["b-drain.svg"].svg)["rect"]; got != 1+5+1 { // background, 5 bars, 1 legend swatch
		t.Errorf("B: %d rects, want the background, 5 bars (Debezium's at zero when not measured) and a legend swatch", got)
	}
	if got := svgCounts(t, byFile["c-latency.svg"].svg)["rect"]; got != 1+2*3+3 {
		t.Errorf("C: %d rects, want the background, 2 consumers × 3 percentiles and 3 legend swatches", got)
	}
	for _, f := range []string{"d-windows.svg", "d-backlog.svg"} {
		if got := svgCounts(t, byFile[f].svg)["circle"]; got != 4 {
			t.Errorf("%s: %d points, want 2 × 2", f, got)
		}
	}

	// Names are escaped, and Write puts the files where the report shows them.
	rep.Drain.Broker = `<Pulsar & co>`
	if s := string(rep.charts()[1].svg); strings.Contains(s, "<Pulsar") || !strings.Contains(s, "&lt;Pulsar &amp; co&gt;") {
		t.Errorf("a broker name went into the SVG unescaped")
	}
	dir := t.TempDir()
	if err := writeCharts(dir, charts); err != nil {
		t.Fatal(err)
	}
	md := string(rep.Markdown())
	for _, c := range charts {
		if _, err := os.Stat(filepath.Join(dir, ChartsDir, c.file)); err != nil {
			t.Error(err)
		}
		if !strings.Contains(md, "("+ChartsDir+"/"+c.file+")") {
			t.Errorf("the report does not show %s", c.file)
		}
	}
}
