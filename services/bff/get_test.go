package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// placeOrder posts validBody and returns the new order's id.
func (e *env) placeOrder(key string) string {
	e.t.Helper()
	resp := e.post(key, validBody)
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("status %d: %s", resp.StatusCode, resp.body)
	}
	var acc accepted
	resp.json(e.t, &acc)
	return acc.OrderID
}

func (e *env) getOrder(path string) (orderView, response) {
	e.t.Helper()
	resp := e.do(http.MethodGet, path, nil)
	var v orderView
	if resp.StatusCode == http.StatusOK {
		resp.json(e.t, &v)
	}
	return v, resp
}

func TestGetOrderPendingAndErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxWait = 5 * time.Second })
	id := e.placeOrder("get")
	v, resp := e.getOrder("/v1/orders/" + id)
	if resp.StatusCode != http.StatusOK || v.Status != statusPending || v.CustomerID != "c-1" || v.Address != "1 Main St" ||
		len(v.Items) != 1 || v.Items[0].SKU != "SKU-1" || v.Items[0].Quantity != 2 || v.RequestedAt.IsZero() {
		t.Errorf("%d %s", resp.StatusCode, resp.body)
	}
	tests := []struct {
		path string
		want int
	}{
		{"/v1/orders/" + uuid.NewString(), http.StatusNotFound},
		{"/v1/orders/" + uuid.NewString() + "?wait=1s", http.StatusNotFound},
		{"/v1/orders/not-a-uuid", http.StatusBadRequest},
		{"/v1/orders/'%20OR%201=1", http.StatusBadRequest},
		{"/v1/orders/" + id + "?wait=soon", http.StatusBadRequest},
		{"/v1/orders/" + id + "?wait=-1s", http.StatusBadRequest},
		{"/v1/orders/" + id + "?wait=1h", http.StatusBadRequest},
		{"/v1/orders/" + id + "?wait=1s&wait=2s", http.StatusBadRequest},
		{"/v1/nothing", http.StatusNotFound},
	}
	for _, tc := range tests {
		_, resp := e.getOrder(tc.path)
		checkProblem(t, resp, tc.want, "")
	}
	resp = e.do(http.MethodDelete, "/v1/orders/"+id, nil)
	checkProblem(t, resp, http.StatusMethodNotAllowed, "")
	if allow := resp.Header.Get("Allow"); allow != "GET" {
		t.Errorf("405 with Allow %q, want GET (RFC 9110: a 405 lists the methods the resource has)", allow)
	}
}

func TestGetOrderWaitTimesOutWithCurrentView(t *testing.T) {
	e := newEnv(t)
	id := e.placeOrder("wait-timeout")
	start := time.Now()
	v, resp := e.getOrder("/v1/orders/" + id + "?wait=300ms")
	if resp.StatusCode != http.StatusOK || v.Status != statusPending {
		t.Fatalf("%d %s", resp.StatusCode, resp.body)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("answered after %s, before the wait ended", el)
	}
}

// TestLongPollReturnsWhenConfirmed publishes the orders service's events to
// the broker: the waiting GET answers as soon as the view consumer applies
// OrderConfirmed, long before its wait ends.
func TestLongPollReturnsWhenConfirmed(t *testing.T) {
	e := newEnvWithBroker(t, func(c *Config) { c.PollInterval = 10 * time.Second }) // only the notification can wake it in time
	id := e.placeOrder("long-poll")
	type result struct {
		v    orderView
		resp response
		took time.Duration
	}
	done := make(chan result, 1)
	go func() { // no t.Fatal off the test goroutine: errors travel in the result
		start := time.Now()
		var r result
		resp, err := http.Get(e.url + "/v1/orders/" + id + "?wait=25s")
		if err == nil {
			r.resp = response{Response: resp}
			r.resp.body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			json.Unmarshal(r.resp.body, &r.v)
		}
		if err != nil {
			r.resp = response{Response: &http.Response{StatusCode: -1}, body: []byte(err.Error())}
		}
		r.took = time.Since(start)
		done <- r
	}()
	e.publish(e.topics().OrderEvents, id, orderPlaced(id))
	e.publish(e.topics().OrderEvents, id, orderConfirmed(id))
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the long poll did not answer")
	}
	if r.resp.StatusCode != http.StatusOK || r.v.Status != statusConfirmed || r.v.Total == nil || r.v.Total.AmountMinor != 500 ||
		r.v.PaymentID == "" || len(r.v.Items) != 1 || r.v.Items[0].Name != "Cheese" || r.v.Items[0].UnitPrice.AmountMinor != 250 {
		t.Fatalf("%d %s", r.resp.StatusCode, r.resp.body)
	}
	if r.took > 10*time.Second {
		t.Errorf("took %s: woken by polling, not by the notification", r.took)
	}
}

// TestViewIsMonotone applies an order's events out of order and twice: a
// late OrderPlaced adds its lines but never moves a terminal order back,
// and a second terminal event does not change the first outcome.
func TestViewIsMonotone(t *testing.T) {
	e := newEnvWithBroker(t)
	confirmedID, rejectedID, unknownID := e.placeOrder("m-1"), e.placeOrder("m-2"), uuid.NewString()
	e.publish(e.topics().OrderEvents, confirmedID, orderConfirmed(confirmedID))
	e.publish(e.topics().OrderEvents, confirmedID, orderPlaced(confirmedID))
	e.publish(e.topics().OrderEvents, confirmedID, orderRejected(confirmedID, ordersv1.RejectionReason_REJECTION_REASON_PAYMENT_DECLINED, "late"))
	e.publish(e.topics().OrderEvents, rejectedID, orderRejected(rejectedID, ordersv1.RejectionReason_REJECTION_REASON_UNKNOWN_PRODUCT, "no SKU-1"))
	e.publish(e.topics().OrderEvents, unknownID, orderRejected(unknownID, ordersv1.RejectionReason_REJECTION_REASON_INVALID_ORDER, "rebuilt"))
	waitFor(t, "five events applied", func() bool { return e.count(`SELECT count(*) FROM inbox`) == 5 })

	v, _ := e.getOrder("/v1/orders/" + confirmedID)
	if v.Status != statusConfirmed || v.Rejection != nil || len(v.Items) != 1 || v.Items[0].Name != "Cheese" {
		t.Errorf("confirmed order: %+v", v)
	}
	v, _ = e.getOrder("/v1/orders/" + rejectedID + "?wait=5s")
	if v.Status != statusRejected || v.Rejection == nil || v.Rejection.Reason != "unknown_product" || v.Rejection.Detail != "no SKU-1" {
		t.Errorf("rejected order: %+v", v)
	}
	v, _ = e.getOrder("/v1/orders/" + unknownID)
	if v.Status != statusRejected || v.Rejection.Reason != "invalid_order" {
		t.Errorf("order known only from its rejection: %+v", v)
	}
}

// TestNotificationsCarryTheViewAsGETReadsIt: the view consumer sends each
// changed view with its notification, so a long poll answers from it
// without reading the view again; what it sends must be exactly what GET
// reads. A view too large for a notification is sent as the order id alone,
// and the long poll reads it.
func TestNotificationsCarryTheViewAsGETReadsIt(t *testing.T) {
	e := newEnvWithBroker(t, func(c *Config) { c.PollInterval = 10 * time.Second })
	ctx := context.Background()
	listener, err := e.admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Release()
	if _, err := listener.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		t.Fatal(err)
	}
	next := func(id string) (view string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, waitTimeout)
		defer cancel()
		for {
			note, err := listener.Conn().WaitForNotification(wctx)
			if err != nil {
				t.Fatalf("no notification for %s: %v", id, err)
			}
			if got, view := parseNotification(note.Payload); got == id {
				return view
			}
		}
	}

	id := e.placeOrder("notified-view")
	e.publish(e.topics().OrderEvents, id, orderPlaced(id))
	placed := next(id)
	e.publish(e.topics().OrderEvents, id, orderConfirmed(id))
	confirmed := next(id)
	for _, sent := range []string{placed, confirmed} {
		if sent == "" {
			t.Fatal("a small view was notified without itself")
		}
	}
	fromNote, err := decodeView(confirmed)
	if err != nil {
		t.Fatal(err)
	}
	read, err := e.srv.store.orderView(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromNote)
	b, _ := json.Marshal(read)
	if string(a) != string(b) || fromNote.Status != statusConfirmed {
		t.Errorf("notified view\n %s\nread view\n %s", a, b)
	}

	// A view of many long lines does not fit: the id alone, and a read.
	big := orderPlaced(uuid.NewString())
	big.Lines = nil
	for i := range 90 {
		big.Lines = append(big.Lines, &ordersv1.PricedLine{Sku: fmt.Sprintf("SKU-%058d", i), Name: strings.Repeat("n", 40),
			Quantity: 1, UnitPrice: eur(100), LineTotal: eur(100)})
	}
	e.publish(e.topics().OrderEvents, big.OrderId, big)
	if view := next(big.OrderId); view != "" {
		t.Errorf("a view of %d bytes was sent with its notification", len(view))
	}
	v, resp := e.getOrder("/v1/orders/" + big.OrderId + "?wait=1s")
	if resp.StatusCode != http.StatusOK || len(v.Items) != 90 {
		t.Errorf("the large view: %d, %d items", resp.StatusCode, len(v.Items))
	}
}
