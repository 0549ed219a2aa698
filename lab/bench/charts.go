package bench

import (
	"bytes"
	"fmt"
	"html"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The report's pictures: small self-contained SVG files written beside
// benchmarks.md (in ChartsDir) and shown in it, for the figures a reader
// would rather look at than read: A's ramp, B's drain rates, C's latency
// per consumer, D's windows and backlog over time. They are drawn from the
// report's own data, so they are always the run's.

// ChartsDir is where Write puts the charts, relative to the report.
const ChartsDir = "charts"

// chart is one SVG file of the report.
type chart struct {
	file  string // under ChartsDir
	title string // the alt text in the report
	svg   []byte
}

// series is a named line of points, or, in a bar chart, one bar per label.
type series struct {
	name   string
	points [][2]float64 // x, y
}

// threshold is a horizontal line: a target to compare the series with.
type threshold struct {
	name string
	y    float64
}

// palette colours series in order; thresholds are drawn dashed in grey.
var palette = []string{"#2a6fdb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285"}

const (
	chartW, chartH       = 640, 300
	padL, padR           = 64, 16
	padT, padB           = 36, 56
	plotW, plotH         = chartW - padL - padR, chartH - padT - padB
	fontFamily           = "system-ui, sans-serif"
	axisColour, gridGrey = "#444", "#e5e5e5"
)

// svgWriter accumulates one chart's markup.
type svgWriter struct{ b bytes.Buffer }

func (w *svgWriter) f(format string, args ...any) { fmt.Fprintf(&w.b, format, args...) }

func (w *svgWriter) open(title string) {
	w.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH, fontFamily)
	w.f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w.f(`<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(title))
}

func (w *svgWriter) close() []byte {
	w.f("</svg>\n")
	return w.b.Bytes()
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten, so that axis
// labels read well; at least 1e-9 so that an all-zero chart still draws.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// label formats an axis value without needless decimals.
func label(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return num(v, 0)
	case math.Abs(v) >= 10:
		return num(v, 0)
	case math.Abs(v) >= 1:
		return num(v, 1)
	}
	return num(v, 2)
}

// axes draws the y grid with labels from 0 to yMax, the axis titles, and
// returns the y scale.
func (w *svgWriter) axes(yMax float64, xTitle, yTitle string) func(float64) float64 {
	y := func(v float64) float64 { return padT + plotH - v/yMax*plotH }
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		w.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", padL, padL+plotW, y(v), y(v), gridGrey)
		w.f(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-6, y(v), label(v))
	}
	w.f(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s"/>`+"\n", padL, padL+plotW, padT+plotH, padT+plotH, axisColour)
	w.f(`<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, chartH-8, html.EscapeString(xTitle))
	w.f(`<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, html.EscapeString(yTitle))
	return y
}

// legend names the series (and thresholds) in one row under the title.
func (w *svgWriter) legend(names []string, dashed []string) {
	x := padL + 260
	for i, n := range names {
		w.f(`<rect x="%d" y="10" width="10" height="10" fill="%s"/><text x="%d" y="19">%s</text>`+"\n",
			x, palette[i%len(palette)], x+14, html.EscapeString(n))
		x += 24 + 7*len(n)
	}
	for _, n := range dashed {
		w.f(`<line x1="%d" x2="%d" y1="15" y2="15" stroke="#888" stroke-dasharray="4 3"/><text x="%d" y="19">%s</text>`+"\n",
			x, x+14, x+18, html.EscapeString(n))
		x += 28 + 7*len(n)
	}
}

// lineChart draws series against a linear x axis from the smallest to the
// largest x of any point, with thresholds as dashed lines.
func lineChart(title, xTitle, yTitle string, ss []series, ts []threshold) []byte {
	var w svgWriter
	w.open(title)
	xMin, xMax, yMax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range ss {
		for _, p := range s.points {
			xMin, xMax, yMax = math.Min(xMin, p[0]), math.Max(xMax, p[0]), math.Max(yMax, p[1])
		}
	}
	for _, t := range ts {
		yMax = math.Max(yMax, t.y)
	}
	if math.IsInf(xMin, 0) || xMax == xMin {
		xMin, xMax = 0, math.Max(1, xMax)
	}
	y := w.axes(niceMax(yMax), xTitle, yTitle)
	x := func(v float64) float64 { return padL + (v-xMin)/(xMax-xMin)*plotW }
	for i := 0; i <= 4; i++ {
		v := xMin + (xMax-xMin)*float64(i)/4
		w.f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(v), padT+plotH+16, label(v))
	}
	var names, dashed []string
	for _, t := range ts {
		w.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="4 3"/>`+"\n", padL, padL+plotW, y(t.y), y(t.y))
		dashed = append(dashed, t.name)
	}
	for i, s := range ss {
		colour := palette[i%len(palette)]
		pts := slices.Clone(s.points)
		slices.SortFunc(pts, func(a, b [2]float64) int { return cmpFloat(a[0], b[0]) })
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
			w.f(`<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s: %s, %s</title></circle>`+"\n",
				x(p[0]), y(p[1]), colour, html.EscapeString(s.name), label(p[0]), label(p[1]))
		}
		w.f(`<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", colour, strings.Join(coords, " "))
		names = append(names, s.name)
	}
	w.legend(names, dashed)
	return w.close()
}

// barChart draws groups of bars: for each label, one bar per series (the
// series' point i is label i's value, its x unused).
func barChart(title, yTitle string, labels []string, ss []series, ts []threshold) []byte {
	var w svgWriter
	w.open(title)
	yMax := 0.0
	for _, s := range ss {
		for _, p := range s.points {
			yMax = math.Max(yMax, p[1])
		}
	}
	for _, t := range ts {
		yMax = math.Max(yMax, t.y)
	}
	y := w.axes(niceMax(yMax), "", yTitle)
	group := float64(plotW) / float64(max(1, len(labels)))
	bar := group * 0.8 / float64(max(1, len(ss)))
	for i, l := range labels {
		gx := padL + group*float64(i) + group*0.1
		w.f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+group*0.4, padT+plotH+16, html.EscapeString(l))
		for j, s := range ss {
			if i >= len(s.points) {
				continue
			}
			v := s.points[i][1]
			w.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`+"\n",
				gx+bar*float64(j), y(v), bar-1, y(0)-y(v), palette[j%len(palette)], html.EscapeString(l), html.EscapeString(s.name), label(v))
		}
	}
	var names, dashed []string
	for _, t := range ts {
		w.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="4 3"/>`+"\n", padL, padL+plotW, y(t.y), y(t.y))
		dashed = append(dashed, t.name)
	}
	for _, s := range ss {
		names = append(names, s.name)
	}
	w.legend(names, dashed)
	return w.close()
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// charts draws the report's pictures for the figures it has.
func (rep *Report) charts() []chart {
	var out []chart
	if t := rep.Throughput; t != nil && len(t.Runs) > 0 {
		var accept, outcome series
		accept.name, outcome.name = "accept p99", "outcome p99"
		for i, run := range t.Runs {
			for _, st := range run.Steps {
				accept.points = append(accept.points, [2]float64{st.Rate, st.Summary.AcceptLatency.P99})
				outcome.points = append(outcome.points, [2]float64{st.Rate, st.Summary.OutcomeLatency.P99})
			}
			if i == 0 && len(t.Runs) > 1 {
				accept.name, outcome.name = "accept p99 (every run)", "outcome p99 (every run)"
			}
		}
		out = append(out, chart{file: "a-ramp.svg", title: "A′: offered rate against accept and outcome p99",
			svg: lineChart("A′: latency as the offered rate rises", "offered orders/s", "ms", []series{accept, outcome},
				[]threshold{{"accept target", t.Criteria.AcceptP99MaxMs}, {"outcome target", t.Criteria.OutcomeP99MaxMs}})})
	}
	if d := rep.Drain; d != nil {
		labels := []string{"relay", "pg_recvlogical text", "pg_recvlogical binary", "polling outbox", "Debezium Server"}
		figures := []*DrainFigures{&d.DrainFigures}
		if d.Pulsar != nil {
			figures = append(figures, d.Pulsar)
		}
		var ss []series
		for _, f := range figures {
			ss = append(ss, series{name: f.Broker, points: [][2]float64{
				{0, f.Relay.Median}, {1, f.RecvText.Median}, {2, f.RecvBinary.Median}, {3, f.Poll.Median}, {4, f.Debezium.Median}}})
		}
		out = append(out, chart{file: "b-drain.svg", title: "B: drain rates of one backlog, median of runs",
			svg: barChart("B: draining one backlog (median of runs)", "transactions/s", labels, ss, nil)})
	}
	if len(rep.Latency) > 0 {
		l := rep.Latency[0]
		consumers := slices.Sorted(maps.Keys(l.P99))
		p50 := series{name: "p50"}
		p99 := series{name: "p99"}
		p999 := series{name: "p99.9"}
		for i, c := range consumers {
			p50.points = append(p50.points, [2]float64{float64(i), l.P50[c].Median})
			p99.points = append(p99.points, [2]float64{float64(i), l.P99[c].Median})
			p999.points = append(p999.points, [2]float64{float64(i), l.P999[c].Median})
		}
		out = append(out, chart{file: "c-latency.svg", title: fmt.Sprintf("C: commit → applied per consumer at %s/s", num(l.Rate, 0)),
			svg: barChart(fmt.Sprintf("C: commit → applied at %s/s (median of runs)", num(l.Rate, 0)), "ms", consumers,
				[]series{p50, p99, p999}, []threshold{{"p50 target", targetApplyP50Ms}, {"p99 target", targetApplyP99Ms}})})
	}
	if c := rep.Constancy; c != nil && len(c.Windows) > 0 {
		tp := series{name: "throughput/s"}
		p99 := series{name: "accept p99 ms"}
		for i, win := range c.Windows {
			at := float64(i+1) * c.WindowSeconds
			tp.points = append(tp.points, [2]float64{at, win.Throughput})
			p99.points = append(p99.points, [2]float64{at, win.Client.AcceptLatency.P99})
		}
		out = append(out, chart{file: "d-windows.svg", title: "D: per-window throughput and accept p99",
			svg: lineChart(fmt.Sprintf("D: %s/s for %s, per window", num(c.Rate, 0), durationText(c.DurationSeconds)),
				"seconds into the run", "orders/s · ms", []series{tp, p99}, nil)})
		if len(c.Samples) > 0 {
			relay := series{name: "relay seconds behind"}
			outbox := series{name: "outbox rows / 1000"}
			for _, s := range c.Samples {
				relay.points = append(relay.points, [2]float64{s.Seconds, s.RelaySeconds})
				outbox.points = append(outbox.points, [2]float64{s.Seconds, float64(s.OutboxRows) / 1000})
			}
			out = append(out, chart{file: "d-backlog.svg", title: "D: the relay's lag and the outbox over time",
				svg: lineChart("D: relay lag and outbox size over time", "seconds into the run", "s · thousand rows", []series{relay, outbox}, nil)})
		}
	}
	if sc := rep.Scale; sc != nil && len(sc.Steps) > 0 {
		var labels []string
		rate := series{name: "measured"}
		ideal := series{name: "linear from 1"}
		for i, st := range sc.Steps {
			labels = append(labels, plural(st.Instances, "1 instance", fmt.Sprintf("%d instances", st.Instances)))
			rate.points = append(rate.points, [2]float64{float64(i), st.Rate.Median})
			ideal.points = append(ideal.points, [2]float64{float64(i), sc.Steps[0].Rate.Median * float64(st.Instances) / float64(sc.Steps[0].Instances)})
		}
		out = append(out, chart{file: "scale.svg", title: fmt.Sprintf("Scaling the consumer stage: orders settled/s by instances, each process at %s core, beside linear scaling from one instance", num(sc.CPUShare, 3)),
			svg: barChart("Consumer stage: orders settled/s", "orders/s (median of runs)", labels, []series{rate, ideal}, nil)})
	}
	return out
}

func durationText(seconds float64) string {
	if seconds >= 120 {
		return num(seconds/60, 0) + " min"
	}
	return num(seconds, 0) + " s"
}

// writeCharts writes the charts under dir/ChartsDir, replacing what an
// earlier run left there.
func writeCharts(dir string, cs []chart) error {
	cdir := filepath.Join(dir, ChartsDir)
	if err := os.RemoveAll(cdir); err != nil {
		return err
	}
	if len(cs) == 0 {
		return nil
	}
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	for _, c := range cs {
		if err := os.WriteFile(filepath.Join(cdir, c.file), c.svg, 0o644); err != nil {
			return fmt.Errorf("writing chart %s: %w", c.file, err)
		}
	}
	return nil
}

// mdCharts shows the charts in the report, under one heading.
func (rep *Report) mdCharts(w *mdWriter) {
	cs := rep.charts()
	if len(cs) == 0 {
		return
	}
	w.line("")
	w.line("## Pictures")
	w.line("")
	for _, c := range cs {
		w.linef("![%s](%s/%s)", c.title, ChartsDir, c.file)
		w.line("")
	}
}
