package bff

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeOrderRequest feeds arbitrary bodies to the decoder: it must
// never panic, must fail only with a 400-class *invalidError, and whatever
// it accepts must satisfy every bound and be storable in Postgres text (no
// NUL, valid UTF-8). Run with: go test -fuzz=FuzzDecodeOrderRequest ./services/bff/
func FuzzDecodeOrderRequest(f *testing.F) {
	for _, seed := range []string{
		validBody,
		`{"customer_id":"c","address":"a\nb","items":[{"sku":"S","quantity":1000}]}`,
		`{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1}],"status":"confirmed"}`,
		`{"customer_id":"c\u0000","address":"a","items":[{"sku":"S","quantity":1}]}`,
		`{"customer_id":"\ud83e\uddc0","address":"a","items":[{"sku":"S","quantity":1e2}]}`,
		`{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":"1"}]} {}`,
		`{"customer_id":"c","customer_id":"d","address":"a","items":[]}`,
		`{"items":[[[[[[[[[[[[]]]]]]]]]]]]}`,
		`[1,2,3]`, `null`, `""`, `{`, "\xff", ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeOrderRequest(body)
		if err != nil {
			var inv *invalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %T %v, want *invalidError", err, err)
			}
			return
		}
		for _, s := range []string{req.CustomerID, req.Address} {
			checkStorable(t, s)
		}
		if n := utf8.RuneCountInString(req.CustomerID); n == 0 || n > maxCustomerIDLen {
			t.Fatalf("customer_id of %d characters accepted", n)
		}
		if len(req.Items) == 0 || len(req.Items) > maxItems {
			t.Fatalf("%d items accepted", len(req.Items))
		}
		for _, it := range req.Items {
			checkStorable(t, it.SKU)
			if it.Quantity < 1 || it.Quantity > maxQuantity || it.SKU == "" {
				t.Fatalf("item %+v accepted", it)
			}
		}
		canonicalHash(req) // must not panic
	})
}

func checkStorable(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		t.Fatalf("unstorable string %q accepted", s)
	}
}

// FuzzPostOrder sends arbitrary bodies through the whole POST /v1/orders
// path into Postgres: whatever the body, the answer is 202 or a 4xx problem,
// never a 5xx (a SQL error would be one). Seeds run in every `go test`.
func FuzzPostOrder(f *testing.F) {
	for _, seed := range []string{
		validBody,
		`{"customer_id":"'; DROP TABLE outbox; --","address":"\u202e\u0301🧀","items":[{"sku":"x\\y","quantity":1}]}`,
		`{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1}],"price":0}`,
		`{"customer_id":"c\u0000","address":"a","items":[{"sku":"S","quantity":1}]}`,
		"{\"customer_id\":\"\xc0\x80\",\"address\":\"a\",\"items\":[{\"sku\":\"S\",\"quantity\":1}]}",
		`{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1}]}garbage`,
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f, func(c *Config) { c.RateBurst, c.RateLimit = 1_000_000, 1_000_000 })
	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/orders", bytes.NewReader(body))
		req.Header.Set("Idempotency-Key", fmt.Sprintf("fuzz-%d-%d", os.Getpid(), n))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
	})
}
