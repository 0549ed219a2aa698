package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBFF serves the part of the bff's API the client uses, after its
// OpenAPI document: products, POST /v1/orders (Idempotency-Key required) and
// GET /v1/orders/{id}?wait=. settle decides an order's final state; "" leaves
// it pending forever.
type fakeBFF struct {
	mu     sync.Mutex
	keys   map[string]bool
	orders map[string]string
	settle func(n int) string
	refuse func(n int) bool
}

func newFakeBFF(t *testing.T, settle func(int) string) (*fakeBFF, *httptest.Server) {
	f := &fakeBFF{keys: map[string]bool{}, orders: map[string]string{}, settle: settle, refuse: func(int) bool { return false }}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeBFF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/products":
		json.NewEncoder(w).Encode(map[string]any{"products": []map[string]any{{"sku": "AXE-ICE-50"}, {"sku": "ROPE-DRY-60"}, {"sku": "HELMET-MTN"}}})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/orders":
		var o order
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil || len(o.Items) == 0 || o.CustomerID == "" {
			http.Error(w, "bad order", http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		defer f.mu.Unlock()
		n := len(f.keys)
		if key == "" || f.keys[key] {
			http.Error(w, "missing or reused key", http.StatusUnprocessableEntity)
			return
		}
		f.keys[key] = true
		if f.refuse(n) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		id := fmt.Sprintf("order-%d", n)
		f.orders[id] = f.settle(n)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"order_id": id, "status": "pending"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/orders/"):
		wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
		if err != nil {
			http.Error(w, "bad wait", http.StatusBadRequest)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/v1/orders/")
		f.mu.Lock()
		state, ok := f.orders[id]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if state == "" {
			select { // the long poll ends without an outcome
			case <-r.Context().Done():
			case <-time.After(min(wait, 100*time.Millisecond)):
			}
			state = "pending"
		}
		json.NewEncoder(w).Encode(map[string]string{"order_id": id, "status": state})
	default:
		http.NotFound(w, r)
	}
}

func TestRunPlacesOrdersOnScheduleAndFollowsThemToTheirOutcome(t *testing.T) {
	f, srv := newFakeBFF(t, func(n int) string {
		if n%10 == 0 {
			return "rejected"
		}
		return "confirmed"
	})
	var progress strings.Builder
	start := time.Now()
	sum, err := Run(context.Background(), Config{BFFURL: srv.URL, Rate: 400, Count: 100, Seed: 7, Progress: &lockedWriter{w: &progress}, ProgressEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Open loop: the last order is due 99/400 s after the start, never earlier.
	if elapsed := time.Since(start); elapsed < 99*time.Second/400 {
		t.Errorf("100 orders at 400/s took %s: ahead of schedule", elapsed)
	}
	if sum.Sent != 100 || sum.Accepted != 100 || sum.Confirmed != 90 || sum.Rejected != 10 || sum.Unresolved != 0 {
		t.Errorf("summary %+v", sum)
	}
	if len(f.keys) != 100 {
		t.Errorf("%d distinct idempotency keys for 100 orders", len(f.keys))
	}
	if sum.AcceptLatency.P50 <= 0 || sum.AcceptLatency.P99 < sum.AcceptLatency.P50 || sum.OutcomeLatency.Max < sum.AcceptLatency.P50 {
		t.Errorf("latencies %+v / %+v", sum.AcceptLatency, sum.OutcomeLatency)
	}
	if !strings.Contains(progress.String(), "sent ") {
		t.Errorf("no progress lines: %q", progress.String())
	}
}

func TestOrdersWithoutOutcomeAreReported(t *testing.T) {
	_, srv := newFakeBFF(t, func(n int) string {
		if n == 3 {
			return "" // stays pending
		}
		return "confirmed"
	})
	sum, err := Run(context.Background(), Config{BFFURL: srv.URL, Rate: 100, Count: 10, OutcomeWait: 300 * time.Millisecond})
	if !errors.Is(err, ErrUnresolved) {
		t.Fatalf("err = %v, want ErrUnresolved", err)
	}
	if sum.Unresolved != 1 || sum.Confirmed != 9 {
		t.Errorf("summary %+v", sum)
	}
}

func TestRefusedOrdersAreCountedNotFollowed(t *testing.T) {
	f, srv := newFakeBFF(t, func(int) string { return "confirmed" })
	f.refuse = func(n int) bool { return n%2 == 1 }
	sum, err := Run(context.Background(), Config{BFFURL: srv.URL, Rate: 200, Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 10 || sum.Refused != 10 || sum.Confirmed != 10 {
		t.Errorf("summary %+v", sum)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	cases := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.5, 5 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 1, 10 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.in, c.q); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.in, c.q, got, c.want)
		}
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, c := range []Config{{}, {BFFURL: "http://x"}, {BFFURL: "http://x", Rate: 1}} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) accepted", c)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
