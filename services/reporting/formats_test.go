package reporting_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/services/reporting"
)

// seedRows writes rows into order_facts as the projection would, and returns
// them in report order.
func (e *env) seedRows(rows []reporting.Row) []reporting.Row {
	e.t.Helper()
	for _, r := range rows {
		pgtest.Exec(e.t, e.admin, `INSERT INTO order_facts (order_id, customer_id, status, total_minor, currency, line_count, item_count,
			payment_id, payment_status, paid_minor, rejection_reason, requested_at, placed_at, paid_at, settled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			r.OrderID, r.CustomerID, r.Status, r.TotalMinor, r.Currency, r.LineCount, r.ItemCount,
			r.PaymentID, r.PaymentStatus, r.PaidMinor, r.RejectionReason, r.RequestedAt, r.PlacedAt, r.PaidAt, r.SettledAt)
	}
	return rows
}

// sampleRows returns rows in report order covering every shape: confirmed,
// declined and rejected at placement, awkward text, and an order known only
// by its payment (no request time, so last).
func sampleRows() []reporting.Row {
	base := time.Date(2026, 11, 26, 8, 0, 0, 123456000, time.UTC)
	at := func(m int) *time.Time { t := base.Add(time.Duration(m) * time.Minute); return &t }
	s := func(v string) *string { return &v }
	i64 := func(v int64) *int64 { return &v }
	i32 := func(v int32) *int32 { return &v }
	customers := []string{"ana", `comma, "quote"`, "<script>alert('x')</script> & co", "línea\nnueva · ñ"}
	var rows []reporting.Row
	for i, c := range customers {
		r := reporting.Row{OrderID: uuid.NewString(), CustomerID: s(c), Status: "confirmed",
			TotalMinor: i64(int64(1999 * (i + 1))), Currency: s("EUR"), LineCount: i32(1), ItemCount: i32(int32(i + 1)),
			PaymentID: s(uuid.NewString()), PaymentStatus: s("approved"), PaidMinor: i64(int64(1999 * (i + 1))),
			RequestedAt: at(i), PlacedAt: at(i + 1), PaidAt: at(i + 2), SettledAt: at(i + 3)}
		rows = append(rows, r)
	}
	rows[2].Status, rows[2].PaymentStatus, rows[2].RejectionReason = "rejected", s("declined"), s("payment_declined")
	rows = append(rows,
		reporting.Row{OrderID: uuid.NewString(), CustomerID: s("bo"), Status: "rejected",
			RejectionReason: s("unknown_product"), RequestedAt: at(10), SettledAt: at(11)},
		reporting.Row{OrderID: uuid.NewString(), Status: "placed", PaymentID: s(uuid.NewString()),
			PaymentStatus: s("approved"), PaidMinor: i64(500), PaidAt: at(20)},
	)
	return rows
}

// TestEveryFormatCarriesTheSameRows renders the report in every registered
// format and reads each back; a new format is covered without editing this
// test (formats it cannot parse must at least name every order).
func TestEveryFormatCarriesTheSameRows(t *testing.T) {
	e := newDBEnv(t, reporting.Config{FetchSize: 2}) // several fetches even for a few rows
	want := e.seedRows(sampleRows())
	reg, err := reporting.DefaultRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Formats()) < 4 {
		t.Fatalf("formats %v: want at least csv, html, json and ndjson", reg.Names())
	}
	for _, f := range reg.Formats() {
		t.Run(f.Name(), func(t *testing.T) {
			resp := e.get("/v1/reports/orders?format=" + f.Name())
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != f.ContentType() {
				t.Fatalf("status %d, Content-Type %q; want 200, %q", resp.StatusCode, resp.Header.Get("Content-Type"), f.ContentType())
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			got, parsed := parseReport(t, f.Name(), body)
			if !parsed {
				for _, r := range want {
					if !strings.Contains(string(body), r.OrderID) {
						t.Errorf("order %s missing", r.OrderID)
					}
				}
				return
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if !slices.Equal(got[i], want[i].Values()) {
					t.Errorf("row %d:\n got %q\nwant %q", i, got[i], want[i].Values())
				}
			}
		})
	}
}

// parseReport reads a report back into rows of values, for the formats it
// knows; parsed is false for a format it does not.
func parseReport(t *testing.T, format string, body []byte) (rows [][]string, parsed bool) {
	t.Helper()
	switch format {
	case "csv":
		records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(records) == 0 || !slices.Equal(records[0], reporting.Columns()) {
			t.Fatalf("header %v, want %v", records[:min(1, len(records))], reporting.Columns())
		}
		return records[1:], true
	case "json":
		var list []reporting.Row
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			rows = append(rows, r.Values())
		}
		return rows, true
	case "ndjson":
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			var r reporting.Row
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			rows = append(rows, r.Values())
		}
		return rows, true
	case "html":
		page := string(body)
		if strings.Contains(page, "<script>") || !strings.Contains(page, "<svg") {
			t.Errorf("html: want an inline svg chart and escaped text")
		}
		return nil, false
	}
	return nil, false
}

func TestHTMLReportChartsOrdersPerStatus(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	e.seedRows(sampleRows())
	body, err := io.ReadAll(e.get("/v1/reports/orders?format=html").Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<title>confirmed: 3</title>`, `<title>rejected: 2</title>`, `<title>placed: 1</title>`,
		"Confirmed revenue: 139.93 EUR.",
		// The table is for a person: amounts in euros, not cents, and it
		// scrolls inside the page instead of widening it.
		`<td class="n">19.99 EUR</td>`, `<td class="n">39.98 EUR</td>`, `#orders { max-width: 100%; overflow-x: auto; }`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("html report lacks %s", want)
		}
	}
	if strings.Contains(string(body), ">1999<") || strings.Contains(string(body), ">3998<") {
		t.Errorf("html report shows amounts in minor units")
	}
}

func TestReportWindow(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	rows := e.seedRows(sampleRows())
	cet := time.FixedZone("CET", 3600)
	for _, zone := range []*time.Location{time.UTC, cet} {
		// An offset's "+" or "-" is left unescaped, as people type it.
		from := rows[1].RequestedAt.In(zone).Format(time.RFC3339Nano)
		to := rows[3].RequestedAt.In(zone).Format(time.RFC3339Nano)
		var got []reporting.Row
		e.getJSON("/v1/reports/orders?format=json&from="+from+"&to="+to, 200, "application/json", &got)
		if len(got) != 2 || got[0].OrderID != rows[1].OrderID || got[1].OrderID != rows[2].OrderID {
			t.Errorf("window [%s, %s): %d rows, want orders 1 and 2", from, to, len(got))
		}
	}
}

func TestBadReportRequests(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	for _, q := range []string{"format=pdf", "format=csv&from=yesterday", "to=2026-13-01T00:00:00Z",
		"from=2026-11-26T10:00:00Z&to=2026-11-26T09:00:00Z"} {
		var p map[string]any
		e.getJSON("/v1/reports/orders?"+q, 400, "application/problem+json", &p)
		if p["status"] != float64(400) || p["title"] == "" || p["detail"] == "" {
			t.Errorf("%s: problem %v", q, p)
		}
	}
	var p struct {
		Detail  string   `json:"detail"`
		Formats []string `json:"formats"`
	}
	e.getJSON("/v1/reports/orders?format=pdf", 400, "application/problem+json", &p)
	if !slices.Equal(p.Formats, []string{"csv", "html", "json", "ndjson"}) || !strings.Contains(p.Detail, "csv, html, json, ndjson") {
		t.Errorf("unknown format problem lists %v, detail %q; want every known format", p.Formats, p.Detail)
	}
}

func TestFormatsEndpointListsTheRegistry(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	var got struct {
		Default string `json:"default"`
		Formats []struct {
			Name        string `json:"name"`
			ContentType string `json:"content_type"`
		} `json:"formats"`
	}
	e.getJSON("/v1/reports/formats", 200, "application/json", &got)
	reg, _ := reporting.DefaultRegistry()
	var names []string
	for _, f := range got.Formats {
		names = append(names, f.Name)
		if want, _ := reg.Lookup(f.Name); want == nil || want.ContentType() != f.ContentType {
			t.Errorf("format %s: content type %q", f.Name, f.ContentType)
		}
	}
	if !slices.Equal(names, reg.Names()) || got.Default != reporting.DefaultFormat {
		t.Errorf("formats %v default %q; want %v default %q", names, got.Default, reg.Names(), reporting.DefaultFormat)
	}
}

func TestHealth(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	for _, path := range []string{"/healthz", "/readyz"} {
		var body map[string]string
		e.getJSON(path, 200, "application/json", &body)
	}
	if resp := e.get("/metrics"); resp.StatusCode != 200 {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
}

// TestDatabaseDownIsAProblem: a report that fails before its first byte is a
// 500 problem, and readiness says the database is gone.
func TestDatabaseDownIsAProblem(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	e.app.Close()
	var p map[string]any
	e.getJSON("/v1/reports/orders?format=csv", 500, "application/problem+json", &p)
	if p["status"] != float64(500) || strings.Contains(p["detail"].(string), "closed") {
		t.Errorf("problem %v: want a 500 that does not leak the cause", p)
	}
	e.getJSON("/readyz", 503, "application/problem+json", &p)
}
