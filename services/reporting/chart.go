package reporting

import (
	"maps"
	"slices"
)

// Geometry of the status chart, in SVG user units.
const (
	chartLabelWidth = 90  // room for the status names left of the bars
	chartBarSpace   = 300 // length of the longest bar
	chartBarHeight  = 22
	chartGap        = 8
)

// chart is what the chart template draws: one horizontal bar per status.
type chart struct {
	Width, Height int
	Bars          []chartBar
}

// chartBar is one bar: its label, its count, and where it is drawn.
type chartBar struct {
	Label             string
	Count             int
	Fill              string
	X, Y, W, H, TextY int
	LabelX, CountX    int
}

// statusColor is a status's bar fill; statuses outside the lifecycle are grey.
func statusColor(status string) string {
	switch status {
	case "placed":
		return "#e0a100"
	case "confirmed":
		return "#2e8b57"
	case "rejected":
		return "#c0392b"
	default:
		return "#888888"
	}
}

// statusChart lays out a bar chart of counts per status. The lifecycle's
// statuses always get a bar, zero or not, so charts compare at a glance.
func statusChart(counts map[string]int) chart {
	// The lifecycle's statuses first, in lifecycle order, then any other.
	labels := []string{"placed", "confirmed", "rejected"}
	for _, s := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(labels, s) {
			labels = append(labels, s)
		}
	}
	most := 1
	for _, n := range counts {
		most = max(most, n)
	}
	c := chart{Width: chartLabelWidth + chartBarSpace + 70}
	for i, label := range labels {
		n := counts[label]
		y := chartGap + i*(chartBarHeight+chartGap)
		w := n * chartBarSpace / most
		c.Bars = append(c.Bars, chartBar{
			Label: label, Count: n, Fill: statusColor(label),
			X: chartLabelWidth, Y: y, W: w, H: chartBarHeight, TextY: y + chartBarHeight/2 + 4,
			CountX: chartLabelWidth + w + 6, LabelX: chartLabelWidth - 6,
		})
	}
	c.Height = chartGap + len(labels)*(chartBarHeight+chartGap)
	return c
}

// chartTemplate draws a chart as inline SVG; html/template escapes labels.
const chartTemplate = `
{{- define "chart" -}}
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
<title id="chart-title">Orders per status</title>
{{range .Bars -}}
<text x="{{.LabelX}}" y="{{.TextY}}" text-anchor="end">{{.Label}}</text>
<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Fill}}"><title>{{.Label}}: {{.Count}}</title></rect>
<text x="{{.CountX}}" y="{{.TextY}}">{{.Count}}</text>
{{end -}}
</svg>
{{end -}}
`
