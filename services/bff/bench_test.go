package bff

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPostOrder measures POST /v1/orders against real Postgres: one new
// order per op (a fresh Idempotency-Key), through the whole handler chain
// (request id, access log, rate limit, decoding, the order's transaction)
// on httptest, without a network in between. serial is one request at a
// time, so ns/op is the latency of one order; parallel runs GOMAXPROCS×4
// clients at once, as a loaded bff does, so ns/op is the inverse of its
// throughput. docs/profiles.md records the figures.
//
//	go test ./services/bff/ -run '^$' -bench PostOrder -count 6
func BenchmarkPostOrder(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, func(c *Config) { c.RateLimit, c.RateBurst = 1e9, 1e9 })
			h := e.srv.Handler()
			var n atomic.Int64
			post := func() error {
				key := fmt.Sprintf("bench-%s-%d", mode, n.Add(1))
				req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(validBody))
				req.Header.Set("Idempotency-Key", key)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
				}
				return nil
			}
			if err := post(); err != nil { // the first order prepares the statements
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if mode == "serial" {
				for range b.N {
					if err := post(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := post(); err != nil {
							b.Error(err) // not Fatal: this is not the benchmark's goroutine
							return
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}
