package reporting_test

import (
	"bufio"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/services/reporting"
)

// TestLargeReportStreams serves a report of 5000 orders of about 2 KB each
// (10 MB) and, halfway through reading it, measures the live heap: a report
// that loaded every row would hold them all; a streamed one holds a batch of
// FetchSize rows and a few buffers.
func TestLargeReportStreams(t *testing.T) {
	const orders, fetch = 5000, 100
	e := newDBEnv(t, reporting.Config{FetchSize: fetch})
	pgtest.Exec(e.t, e.admin, `INSERT INTO order_facts (order_id, customer_id, status, total_minor, currency, requested_at)
		SELECT gen_random_uuid(), repeat('x', 2000) || i, 'placed', i, 'EUR',
		       '2026-11-26T00:00:00Z'::timestamptz + i * interval '1 second'
		FROM generate_series(1, $1::int) AS i`, orders)
	const dataBytes = orders * 2000

	before := liveHeap()
	resp := e.get("/v1/reports/orders?format=ndjson")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var grown uint64
	for i := 1; ; i++ {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if i-1 != orders {
				t.Fatalf("%d rows, want %d (%v)", i-1, orders, err)
			}
			break
		}
		var row reporting.Row
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if row.TotalMinor == nil || *row.TotalMinor != int64(i) {
			t.Fatalf("row %d is order %v: out of order", i, row.TotalMinor)
		}
		if i == orders/2 {
			grown = max(liveHeap(), before) - before
		}
	}
	t.Logf("live heap grew by %d KB halfway through a %d KB report", grown>>10, dataBytes>>10)
	if grown > dataBytes/2 {
		t.Errorf("live heap grew by %d bytes halfway through the report: want well under the report's %d bytes", grown, dataBytes)
	}
}

// liveHeap returns the bytes of live heap objects, after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
