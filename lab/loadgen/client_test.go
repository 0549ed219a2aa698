package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
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
	// Ledger tests: ids maps keys to the orders they created, which a
	// retry with the same key is answered with; fault, when set, decides
	// how the attempt-th POST (from 0) with the n-th new key goes wrong.
	ids      map[string]string
	attempts map[string]int
	fault    func(n, attempt int) fault
	// bodies keeps the last order posted with each key.
	bodies map[string]Order
}

// fault is how the fake bff mistreats one POST.
type fault int

const (
	noFault     fault = iota
	resetBefore       // the connection drops before anything is written
	resetAfter        // the order is written, then the connection drops
	problem503        // the bff's "database unreachable" problem
	bare500           // an unexplained 500, after writing nothing
	bare502           // a gateway's 502 without a problem body
)

func newFakeBFF(t *testing.T, settle func(int) string) (*fakeBFF, *httptest.Server) {
	f := &fakeBFF{keys: map[string]bool{}, orders: map[string]string{}, settle: settle, refuse: func(int) bool { return false },
		ids: map[string]string{}, attempts: map[string]int{}, bodies: map[string]Order{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeBFF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/products":
		json.NewEncoder(w).Encode(map[string]any{"products": []map[string]any{{"sku": "AXE-ICE-50"}, {"sku": "ROPE-DRY-60"}, {"sku": "HELMET-MTN"}}})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/orders":
		var o Order
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil || len(o.Items) == 0 || o.CustomerID == "" {
			http.Error(w, "bad order", http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.bodies[key] = o
		n := len(f.keys)
		if f.fault != nil {
			if id, ok := f.ids[key]; ok {
				w.WriteHeader(http.StatusAccepted) // the replay of the stored answer
				json.NewEncoder(w).Encode(map[string]string{"order_id": id, "status": "pending"})
				return
			}
			attempt := f.attempts[key]
			f.attempts[key]++
			switch f.fault(n, attempt) {
			case resetBefore:
				panic(http.ErrAbortHandler)
			case resetAfter:
				id := fmt.Sprintf("order-%d", n)
				f.keys[key], f.ids[key], f.orders[id] = true, id, f.settle(n)
				panic(http.ErrAbortHandler)
			case problem503:
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"type":"about:blank","title":"Service Unavailable","status":503}`))
				return
			case bare500:
				http.Error(w, "oops", http.StatusInternalServerError)
				return
			case bare502:
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
		}
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
		f.ids[key] = id
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

// TestLedgerRecordsEachOperationsFate checks the ledger's classification
// and the retries with the same Idempotency-Key: an attempt with no answer
// is retried until a definite one; a first 503 problem or 429 is a refusal;
// a 5xx that says nothing stays unknown once the retries run out.
func TestLedgerRecordsEachOperationsFate(t *testing.T) {
	cases := []struct {
		name     string
		fault    func(attempt int) fault
		fate     Fate
		attempts int
		created  bool // whether the fake bff holds an order for the key
	}{
		{"clean", func(int) fault { return noFault }, FateOK, 1, true},
		{"reset before writing, then ok", func(a int) fault { return []fault{resetBefore, noFault}[min(a, 1)] }, FateOK, 2, true},
		{"reset after writing: the retry is replayed", func(a int) fault { return []fault{resetAfter, noFault}[min(a, 1)] }, FateOK, 2, true},
		{"503 problem first: refused", func(int) fault { return problem503 }, FateFailed, 1, false},
		{"unknown, then 503 until the end: unknown", func(a int) fault { return []fault{resetBefore, problem503}[min(a, 1)] }, FateUnknown, 0, false},
		{"unexplained 500 until the end: unknown", func(int) fault { return bare500 }, FateUnknown, 0, false},
		{"502 without a problem, then ok", func(a int) fault { return []fault{bare502, noFault}[min(a, 1)] }, FateOK, 2, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, srv := newFakeBFF(t, func(int) string { return "confirmed" })
			f.fault = func(_, attempt int) fault { return c.fault(attempt) }
			var ledger Ledger
			sum, err := Run(context.Background(), Config{BFFURL: srv.URL, Rate: 100, Count: 1, Ledger: &ledger, RetryFor: 700 * time.Millisecond})
			if err != nil {
				t.Fatalf("%v (%+v)", err, sum)
			}
			ops := ledger.Ops()
			if len(ops) != 1 {
				t.Fatalf("%d operations recorded, want 1", len(ops))
			}
			op := ops[0]
			if op.Fate != c.fate || (c.attempts > 0 && op.Attempts != c.attempts) || op.Key == "" {
				t.Errorf("op %+v: want fate %s after %d attempts", op, c.fate, c.attempts)
			}
			if c.fate == FateUnknown && op.Attempts < 3 {
				t.Errorf("op %+v: an unknown fate was retried only %d times", op, op.Attempts)
			}
			f.mu.Lock()
			_, created := f.ids[op.Key]
			attempts := f.attempts[op.Key]
			body, posted := f.bodies[op.Key]
			f.mu.Unlock()
			if op.Order == nil || (posted && !reflect.DeepEqual(*op.Order, body)) {
				t.Errorf("the ledger recorded order %+v, the bff was sent %+v", op.Order, body)
			}
			if created != c.created {
				t.Errorf("order created = %v, want %v", created, c.created)
			}
			if op.Fate == FateOK && (op.OrderID != f.ids[op.Key] || op.Outcome != "confirmed") {
				t.Errorf("op %+v: want order %s confirmed", op, f.ids[op.Key])
			}
			if op.Fate != FateOK && attempts != op.Attempts {
				t.Errorf("the bff saw %d attempts, the ledger %d: an attempt the ledger does not know", attempts, op.Attempts)
			}
			counts := ledger.Counts()
			if counts.OK+counts.Failed+counts.Unknown != 1 || sum.Accepted+sum.Refused+sum.Failed != 1 {
				t.Errorf("counts %+v, summary %+v", counts, sum)
			}
		})
	}
}

// TestOutcomeWaitOutlastsAnUnreachableBFF checks that an order's outcome
// is still awaited while GETs fail (the bff down), and found afterwards.
func TestOutcomeWaitOutlastsAnUnreachableBFF(t *testing.T) {
	f, srv := newFakeBFF(t, func(int) string { return "" })
	var down sync.Mutex
	failing := 0
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/orders/") {
			down.Lock()
			failing++
			n := failing
			down.Unlock()
			if n <= 3 {
				panic(http.ErrAbortHandler) // the bff is down for the first reads
			}
			f.mu.Lock()
			f.orders["order-0"] = "rejected" // and the order settled meanwhile
			f.mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	var ledger Ledger
	sum, err := Run(context.Background(), Config{BFFURL: srv.URL, Rate: 10, Count: 1, Ledger: &ledger, OutcomeWait: 2 * time.Second})
	if err != nil {
		t.Fatalf("%v (%+v)", err, sum)
	}
	if sum.Rejected != 1 || sum.Unresolved != 0 {
		t.Errorf("summary %+v", sum)
	}
	if ops := ledger.Ops(); len(ops) != 1 || ops[0].Outcome != "rejected" {
		t.Errorf("ledger %+v", ops)
	}
}

// TestStopEndsPlacing checks that closing Config.Stop ends the placing of
// orders while those placed are still followed to their outcome.
func TestStopEndsPlacing(t *testing.T) {
	_, srv := newFakeBFF(t, func(int) string { return "confirmed" })
	stop := make(chan struct{})
	var ledger Ledger
	done := make(chan Summary, 1)
	go func() {
		sum, err := Run(context.Background(), Config{BFFURL: srv.URL, Rate: 50, Duration: time.Hour, Ledger: &ledger, Stop: stop})
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(ledger.Ops()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
	close(stop)
	select {
	case sum := <-done:
		if sum.Sent < 3 || sum.Confirmed != sum.Sent || int64(len(ledger.Ops())) != sum.Sent {
			t.Errorf("summary %+v, %d in the ledger", sum, len(ledger.Ops()))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end after Stop")
	}
}
