package bff

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestIdempotencyReplay covers FAULTS row 20: the same key and the same
// request, even spelled differently, get the original answer back.
func TestIdempotencyReplay(t *testing.T) {
	e := newEnv(t)
	first := e.post("same", validBody)
	if first.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", first.StatusCode, first.body)
	}
	respelled := `{ "items": [ {"quantity": 2, "sku": "SKU-1"} ], "address": "1 Main St", "customer_id": "c\u002d1" }`
	for _, body := range []string{validBody, respelled} {
		again := e.post("same", body)
		if again.StatusCode != first.StatusCode || string(again.body) != string(first.body) ||
			again.Header.Get("Location") != first.Header.Get("Location") {
			t.Errorf("replay %d %s %q, want %d %s %q", again.StatusCode, again.body, again.Header.Get("Location"),
				first.StatusCode, first.body, first.Header.Get("Location"))
		}
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Error("replay not marked Idempotent-Replayed")
		}
	}
	// The draft's structured-field form, "same" quoted, is the same key.
	quoted := e.do(http.MethodPost, "/v1/orders", strings.NewReader(validBody), "Idempotency-Key", `"same"`)
	if quoted.Header.Get("Idempotent-Replayed") != "true" || string(quoted.body) != string(first.body) {
		t.Errorf("quoted key: %d %s", quoted.StatusCode, quoted.body)
	}
	if n := e.count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("%d outbox rows, want 1", n)
	}
}

// TestIdempotencyKeyReusedWithOtherBody covers FAULTS row 19: 422, and the
// original order is untouched.
func TestIdempotencyKeyReusedWithOtherBody(t *testing.T) {
	e := newEnv(t)
	first := e.post("reused", validBody)
	var acc accepted
	first.json(t, &acc)
	other := strings.Replace(validBody, `"quantity":2`, `"quantity":3`, 1)
	checkProblem(t, e.post("reused", other), http.StatusUnprocessableEntity, "")
	if n := e.count(`SELECT count(*) FROM order_requests`); n != 1 {
		t.Errorf("%d order requests, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM order_requests WHERE order_id = $1 AND lines @> '[{"quantity":2}]'`, acc.OrderID); n != 1 {
		t.Error("the original request changed")
	}
	// A different key with the other body is a new order.
	if resp := e.post("fresh", other); resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d: %s", resp.StatusCode, resp.body)
	}
}

// TestIdempotencyConcurrentDuplicates covers FAULTS row 21: 50 identical
// requests at once make one order; each of the others replays it or gets 409.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateBurst = 1000 })
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		orders  = map[string]int{}
		byState = map[int]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/orders", strings.NewReader(validBody))
			req.Header.Set("Idempotency-Key", "concurrent")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			byState[resp.StatusCode]++
			if loc := resp.Header.Get("Location"); loc != "" {
				orders[loc]++
			}
		})
	}
	close(start)
	wg.Wait()
	if byState[http.StatusAccepted]+byState[http.StatusConflict] != n || len(orders) != 1 {
		t.Errorf("statuses %v, orders %v: want %d answers of 202 or 409 naming one order", byState, orders, n)
	}
	for table, want := range map[string]int{"order_requests": 1, "outbox": 1, "order_views": 1, "idempotency_keys": 1} {
		if got := e.count(`SELECT count(*) FROM ` + table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
}

// TestIdempotencyKeysAreIndependent checks that distinct keys make distinct
// orders even for the same body.
func TestIdempotencyKeysAreIndependent(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		if resp := e.post(fmt.Sprintf("key-%d", i), validBody); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := e.count(`SELECT count(*) FROM order_requests`); n != 3 {
		t.Errorf("%d orders, want 3", n)
	}
}
