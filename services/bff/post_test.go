package bff

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

func TestPostOrderWritesOneTransaction(t *testing.T) {
	e := newEnv(t)
	resp := e.do(http.MethodPost, "/v1/orders", strings.NewReader(validBody),
		"Idempotency-Key", "k-1", "Content-Type", "application/json", "X-Request-Id", "req-123")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.body)
	}
	var got accepted
	resp.json(t, &got)
	if got.Status != "pending" || got.OrderID == "" {
		t.Fatalf("body %s", resp.body)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/orders/"+got.OrderID {
		t.Errorf("Location %q", loc)
	}
	if id := resp.Header.Get("X-Request-Id"); id != "req-123" {
		t.Errorf("X-Request-Id %q, want the client's", id)
	}
	for table, want := range map[string]int{"order_requests": 1, "idempotency_keys": 1, "order_views": 1, "outbox": 1} {
		if n := e.count(`SELECT count(*) FROM ` + table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
	if n := e.count(`SELECT count(*) FROM order_views WHERE order_id = $1 AND status = 'pending'`, got.OrderID); n != 1 {
		t.Error("no pending view row")
	}
	var topic, key, typ string
	var payload []byte
	if err := e.admin.QueryRow(t.Context(), `SELECT topic, aggregate_id, type, payload FROM outbox`).Scan(&topic, &key, &typ, &payload); err != nil {
		t.Fatal(err)
	}
	var cmd ordersv1.PlaceOrder
	if err := proto.Unmarshal(payload, &cmd); err != nil {
		t.Fatal(err)
	}
	if topic != e.topics().OrderCommands || key != got.OrderID || typ != "alpes.orders.v1.PlaceOrder" ||
		cmd.GetOrderId() != got.OrderID || cmd.GetCustomerId() != "c-1" || len(cmd.GetLines()) != 1 ||
		cmd.GetLines()[0].GetSku() != "SKU-1" || cmd.GetLines()[0].GetQuantity() != 2 || cmd.GetRequestedAt() == nil {
		t.Errorf("outbox row %s %s %s %v", topic, key, typ, &cmd)
	}
}

// TestPostOrderRejectsBadInput covers FAULTS rows 18, 22 and 23: every bad
// request gets a 4xx problem+json, never a 500, and writes nothing.
func TestPostOrderRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	item := `{"sku":"S","quantity":1}`
	many := strings.TrimSuffix(strings.Repeat(item+",", maxItems+1), ",")
	tests := []struct {
		name, body string
		key        string // default: a fresh key
		want       int
		field      string // expected errors[0].field, if any
	}{
		{name: "malformed", body: `{"customer_id":`, want: 400},
		{name: "not json", body: `hello`, want: 400},
		{name: "empty body", body: ``, want: 400},
		{name: "array", body: `[]`, want: 400},
		{name: "null", body: `null`, want: 400},
		{name: "trailing data", body: validBody + `{}`, want: 400},
		{name: "trailing garbage", body: validBody + ` x`, want: 400},
		{name: "unknown field", body: `{"customer_id":"c","address":"a","items":[` + item + `],"coupon":"X"}`, want: 400, field: "/coupon"},
		{name: "unknown item field", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1,"color":"red"}]}`, want: 400, field: "/items/0/color"},
		{name: "case-folded field", body: `{"Customer_ID":"c","address":"a","items":[` + item + `]}`, want: 400, field: "/Customer_ID"},
		{name: "mass assignment status", body: `{"customer_id":"c","address":"a","items":[` + item + `],"status":"confirmed"}`, want: 400, field: "/status"},
		{name: "mass assignment id", body: `{"id":"x","customer_id":"c","address":"a","items":[` + item + `]}`, want: 400, field: "/id"},
		{name: "mass assignment order_id", body: `{"order_id":"x","customer_id":"c","address":"a","items":[` + item + `]}`, want: 400, field: "/order_id"},
		{name: "mass assignment price", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1,"price":0}]}`, want: 400, field: "/items/0/price"},
		{name: "customer_id number", body: `{"customer_id":7,"address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "customer_id missing", body: `{"address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "customer_id null", body: `{"customer_id":null,"address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "customer_id blank", body: `{"customer_id":"  ","address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "customer_id too long", body: `{"customer_id":"` + strings.Repeat("é", maxCustomerIDLen+1) + `","address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "items object", body: `{"customer_id":"c","address":"a","items":{}}`, want: 400, field: "/items"},
		{name: "items empty", body: `{"customer_id":"c","address":"a","items":[]}`, want: 400, field: "/items"},
		{name: "too many items", body: `{"customer_id":"c","address":"a","items":[` + many + `]}`, want: 400, field: "/items"},
		{name: "item not object", body: `{"customer_id":"c","address":"a","items":[1]}`, want: 400, field: "/items/0"},
		{name: "quantity string", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":"1"}]}`, want: 400, field: "/items/0/quantity"},
		{name: "quantity fraction", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1.5}]}`, want: 400, field: "/items/0/quantity"},
		{name: "quantity zero", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":0}]}`, want: 400, field: "/items/0/quantity"},
		{name: "quantity negative", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":-3}]}`, want: 400, field: "/items/0/quantity"},
		{name: "quantity huge", body: `{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":99999999999999999999999}]}`, want: 400, field: "/items/0/quantity"},
		{name: "duplicate sku", body: `{"customer_id":"c","address":"a","items":[` + item + `,` + item + `]}`, want: 400, field: "/items/1/sku"},
		{name: "NUL byte escaped", body: `{"customer_id":"c\u0000","address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "NUL byte raw", body: "{\"customer_id\":\"c\x00\",\"address\":\"a\",\"items\":[" + item + "]}", want: 400},
		{name: "lone surrogate", body: `{"customer_id":"\ud800","address":"a","items":[` + item + `]}`, want: 400, field: "/customer_id"},
		{name: "invalid utf-8", body: "{\"customer_id\":\"\xff\xfe\",\"address\":\"a\",\"items\":[" + item + "]}", want: 400},
		{name: "control character in sku", body: `{"customer_id":"c","address":"a","items":[{"sku":"S\u001b[31m","quantity":1}]}`, want: 400, field: "/items/0/sku"},
		{name: "no idempotency key", body: validBody, key: "-", want: 400, field: "Idempotency-Key"},
		{name: "idempotency key with space", body: validBody, key: "a b", want: 400, field: "Idempotency-Key"},
		{name: "idempotency key empty quotes", body: validBody, key: `""`, want: 400, field: "Idempotency-Key"},
		{name: "idempotency key too long", body: validBody, key: strings.Repeat("k", 256), want: 400, field: "Idempotency-Key"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = fmt.Sprintf("bad-%d", i)
			}
			req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/orders", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if key != "-" {
				req.Header.Set("Idempotency-Key", key)
			}
			resp := e.send(http.DefaultClient, req)
			checkProblem(t, resp, tc.want, tc.field)
		})
	}
	if n := e.count(`SELECT (SELECT count(*) FROM order_requests) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM idempotency_keys)`); n != 0 {
		t.Errorf("bad requests wrote %d rows", n)
	}
}

// TestPostOrderStoresOddTextLiterally covers FAULTS row 22: SQL syntax,
// quotes, emoji, RTL text and combining marks are data, stored as sent.
func TestPostOrderStoresOddTextLiterally(t *testing.T) {
	e := newEnv(t)
	odd := []string{
		`'; DROP TABLE order_requests; --`,
		`Robert"); DELETE FROM outbox WHERE ("1"="1`,
		`$1 $$ \x00 %s %n`,
		"Zoë 🧀 \u202eevil\u202c שלום e\u0301",
		"line one\nline two\ttab",
	}
	for i, s := range odd {
		customer := s
		if strings.ContainsAny(s, "\n\t") {
			customer = "multi-line" // only the address may hold newlines and tabs
		}
		body, _ := json.Marshal(map[string]any{"customer_id": customer, "address": s,
			"items": []map[string]any{{"sku": fmt.Sprintf("sku-%d", i), "quantity": 1}}})
		resp := e.post(fmt.Sprintf("odd-%d", i), string(body))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%q: status %d: %s", s, resp.StatusCode, resp.body)
		}
		var acc accepted
		resp.json(t, &acc)
		var address string
		if err := e.admin.QueryRow(t.Context(), `SELECT address FROM order_requests WHERE order_id = $1`, acc.OrderID).Scan(&address); err != nil {
			t.Fatal(err)
		}
		if address != s {
			t.Errorf("stored %q, sent %q", address, s)
		}
	}
}

// TestPostOrderBodyLimit covers FAULTS row 17: 413 with nothing written,
// whether the size is declared or the body is chunked.
func TestPostOrderBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 1 << 10 })
	big := `{"customer_id":"c","address":"` + strings.Repeat("a", 4<<10) + `","items":[{"sku":"S","quantity":1}]}`
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if chunked {
				body = io.MultiReader(strings.NewReader(big)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/orders", body)
			req.Header.Set("Idempotency-Key", fmt.Sprintf("big-%v", chunked))
			resp := e.send(http.DefaultClient, req)
			if chunked && req.ContentLength != 0 {
				t.Fatalf("request was not chunked: length %d", req.ContentLength)
			}
			checkProblem(t, resp, http.StatusRequestEntityTooLarge, "")
		})
	}
	if n := e.count(`SELECT count(*) FROM order_requests`); n != 0 {
		t.Errorf("%d order requests written", n)
	}
}

func TestPostOrderRequiresJSONContentType(t *testing.T) {
	e := newEnv(t)
	resp := e.do(http.MethodPost, "/v1/orders", strings.NewReader(validBody), "Idempotency-Key", "ct", "Content-Type", "text/plain")
	checkProblem(t, resp, http.StatusUnsupportedMediaType, "")
}

// checkProblem asserts an RFC 9457 answer with status and, when field is
// set, that its first field error names field.
func checkProblem(t *testing.T, resp response, status int, field string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, resp.body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p problem
	resp.json(t, &p)
	if p.Status != status || p.Title == "" || p.Type == "" || p.RequestID == "" {
		t.Errorf("problem %s", resp.body)
	}
	if field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != field) {
		t.Errorf("errors %+v, want field %s", p.Errors, field)
	}
}

func TestDecodeRefusesDuplicateKeys(t *testing.T) {
	for _, body := range []string{
		`{"customer_id":"a","customer_id":"b","address":"x","items":[{"sku":"S","quantity":1}]}`,
		`{"customer_id":"a","address":"x","items":[{"sku":"S","quantity":1,"quantity":9}]}`,
	} {
		if _, err := decodeOrderRequest([]byte(body)); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
}

// TestEveryInvalidFieldIsReported: a body with several mistakes is answered
// with one 400 whose errors list each of them, so a client fixes them in one
// round, not one per request.
func TestEveryInvalidFieldIsReported(t *testing.T) {
	_, err := decodeOrderRequest([]byte(`{"customer_id":"","address":"x","status":"paid","colour":"red",` +
		`"items":[{"sku":"S","quantity":0},{"sku":"","quantity":1.5},{"sku":"S","quantity":1},{"sku":"T","quantity":2,"price":1}]}`))
	var inv *invalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v, want an *invalidError", err)
	}
	var got []string
	for _, f := range inv.fields {
		got = append(got, f.Field)
	}
	want := []string{"/colour", "/status", "/customer_id", "/items/0/quantity", "/items/1/sku", "/items/1/quantity", "/items/3/price"}
	if !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	if !strings.HasPrefix(inv.detail, "7 problems: /colour: is not a known field; /status: is assigned by the server") {
		t.Errorf("detail %q", inv.detail)
	}

	// A valid request still decodes, and one mistake reads as before.
	if _, err := decodeOrderRequest([]byte(`{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":1}]}`)); err != nil {
		t.Errorf("valid request refused: %v", err)
	}
	_, err = decodeOrderRequest([]byte(`{"customer_id":"c","address":"a","items":[{"sku":"S","quantity":0}]}`))
	if !errors.As(err, &inv) || len(inv.fields) != 1 || inv.detail != "/items/0/quantity: must be between 1 and "+strconv.Itoa(maxQuantity) {
		t.Errorf("one mistake: %v", err)
	}
}
