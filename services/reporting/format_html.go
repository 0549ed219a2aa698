package reporting

import (
	"html/template"
	"io"
	"maps"
	"slices"
	"time"
)

// HTML returns the HTML format: a self-contained page (inline CSS and SVG, no
// scripts, no external assets) with a bar chart of orders per status, the
// confirmed revenue per currency, and a table of the orders. The table is
// streamed row by row; the chart, which needs every row, is written after it
// and shown above it by CSS.
func (Builtins) HTML() Format { return htmlFormat{tmpl: htmlTemplates()} }

type htmlFormat struct{ tmpl *template.Template }

func (htmlFormat) Name() string        { return "html" }
func (htmlFormat) ContentType() string { return "text/html; charset=utf-8" }

func (h htmlFormat) NewWriter(w io.Writer) RowWriter {
	return &htmlWriter{w: w, tmpl: h.tmpl, perStatus: map[string]int{}, revenue: map[string]int64{}}
}

// htmlWriter keeps the chart's figures: a count per status and a sum per
// currency, bounded by the number of statuses and currencies, not of rows.
type htmlWriter struct {
	w         io.Writer
	tmpl      *template.Template
	started   bool
	rows      int
	perStatus map[string]int
	revenue   map[string]int64
}

func (h *htmlWriter) start() error {
	if h.started {
		return nil
	}
	h.started = true
	return h.tmpl.ExecuteTemplate(h.w, "head", htmlColumns)
}

func (h *htmlWriter) WriteRow(r Row) error {
	if err := h.start(); err != nil {
		return err
	}
	h.rows++
	h.perStatus[r.Status]++
	if r.Status == "confirmed" && r.TotalMinor != nil && r.Currency != nil {
		h.revenue[*r.Currency] += *r.TotalMinor
	}
	return h.tmpl.ExecuteTemplate(h.w, "row", htmlCells(r))
}

func (h *htmlWriter) Finish() error {
	if err := h.start(); err != nil {
		return err
	}
	var revenue []string
	for _, cur := range slices.Sorted(maps.Keys(h.revenue)) {
		revenue = append(revenue, formatMoney(h.revenue[cur], cur))
	}
	return h.tmpl.ExecuteTemplate(h.w, "foot", map[string]any{
		"Rows":    h.rows,
		"Revenue": revenue,
		"Chart":   statusChart(h.perStatus),
	})
}

// htmlColumns head the page's table: the report for a person, where CSV
// and JSON carry every column for programs.
var htmlColumns = []string{"order", "customer", "status", "total", "lines", "items", "payment", "paid", "rejection", "requested (UTC)", "settled (UTC)"}

// htmlCell is a table cell: its text, the full value on hover when the
// text shortens it, and whether it is a number (aligned right).
type htmlCell struct {
	Text, Title string
	Number      bool
}

// htmlCells returns r's cells under htmlColumns: amounts in their currency's
// units (19.99 EUR, not 1999), ids shortened to their first 8 characters,
// times to the second.
func htmlCells(r Row) []htmlCell {
	money := func(minor *int64) htmlCell {
		if minor == nil || r.Currency == nil {
			return htmlCell{Number: true}
		}
		return htmlCell{Text: formatMoney(*minor, *r.Currency), Number: true}
	}
	id := func(s string) htmlCell {
		if len(s) <= 8 {
			return htmlCell{Text: s}
		}
		return htmlCell{Text: s[:8] + "…", Title: s}
	}
	when := func(t *time.Time) htmlCell {
		if t == nil {
			return htmlCell{}
		}
		return htmlCell{Text: t.UTC().Format(time.DateTime), Title: t.UTC().Format(time.RFC3339Nano)}
	}
	return []htmlCell{
		id(r.OrderID), {Text: str(r.CustomerID)}, {Text: r.Status}, money(r.TotalMinor),
		{Text: integer(r.LineCount), Number: true}, {Text: integer(r.ItemCount), Number: true},
		{Text: str(r.PaymentStatus)}, money(r.PaidMinor), {Text: str(r.RejectionReason)},
		when(r.RequestedAt), when(r.SettledAt),
	}
}

// htmlTemplates parses the page's three parts. html/template escapes every
// value, so customer-supplied text cannot inject markup.
func htmlTemplates() *template.Template {
	return template.Must(template.New("report").Parse(`
{{- define "head" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>alpes · orders report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
main { display: flex; flex-direction: column; gap: 1.5rem; }
#summary { order: -1; }
#orders { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td[title] { cursor: help; }
th { background: #f0f0f0; }
svg text { font: 12px system-ui, sans-serif; }
</style>
</head>
<body>
<h1>Orders report</h1>
<main>
<section id="orders">
<table>
<thead><tr>{{range .}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{end -}}

{{- define "row" -}}
<tr>{{range .}}<td{{if .Number}} class="n"{{end}}{{if .Title}} title="{{.Title}}"{{end}}>{{.Text}}</td>{{end}}</tr>
{{end -}}

{{- define "foot" -}}
</tbody>
</table>
</section>
<section id="summary">
<p>{{.Rows}} orders.{{if .Revenue}} Confirmed revenue: {{range $i, $r := .Revenue}}{{if $i}}, {{end}}{{$r}}{{end}}.{{end}}</p>
{{template "chart" .Chart}}
</section>
</main>
</body>
</html>
{{end -}}
` + chartTemplate))
}
