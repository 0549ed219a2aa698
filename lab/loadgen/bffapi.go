package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// bffAPI speaks the bff's public HTTP API (services/bff's OpenAPI document).
type bffAPI struct {
	base string
	http *http.Client
}

// Item is one line of an Order: a product and how many of it.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Order is what an operation asks the bff to place: the body of
// POST /v1/orders, encoded as is.
type Order struct {
	CustomerID string `json:"customer_id"`
	Address    string `json:"address"`
	Items      []Item `json:"items"`
}

// products lists the SKUs the bff sells.
func (a *bffAPI) products(ctx context.Context) ([]string, error) {
	var body struct {
		Products []struct {
			SKU string `json:"sku"`
		} `json:"products"`
	}
	if _, err := a.do(ctx, http.MethodGet, "/v1/products", nil, nil, &body); err != nil {
		return nil, err
	}
	skus := make([]string, 0, len(body.Products))
	for _, p := range body.Products {
		skus = append(skus, p.SKU)
	}
	if len(skus) == 0 {
		return nil, fmt.Errorf("the bff lists no products yet")
	}
	return skus, nil
}

// waitForProducts lists the products, retrying for up to patience while the
// bff's catalogue replica is still empty (a stack that has just started).
func (a *bffAPI) waitForProducts(ctx context.Context, patience time.Duration) ([]string, error) {
	deadline := time.Now().Add(patience)
	for {
		skus, err := a.products(ctx)
		if err == nil || time.Now().After(deadline) {
			return skus, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// answer is what one HTTP exchange produced: a status (0 when no answer
// came), whether the body was a problem+json document, the order id of a
// 202, and the transport or decoding error, if any.
type answer struct {
	status  int
	problem bool
	orderID string
	retry   time.Duration // Retry-After, when given
	err     error
}

// postOrder sends one attempt of POST /v1/orders with key, bounded by timeout.
func (a *bffAPI) postOrder(ctx context.Context, key string, o Order, timeout time.Duration) answer {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body struct {
		OrderID string `json:"order_id"`
	}
	resp, err := a.send(ctx, http.MethodPost, "/v1/orders", http.Header{"Idempotency-Key": {key}}, o, &body)
	ans := answer{status: resp.status, problem: resp.problem, retry: resp.retryAfter, err: err}
	if err == nil && resp.status == http.StatusAccepted {
		if body.OrderID == "" {
			ans.err = fmt.Errorf("a 202 without an order id")
		}
		ans.orderID = body.OrderID
	}
	return ans
}

// awaitOrder long-polls the order's state for up to wait.
func (a *bffAPI) awaitOrder(ctx context.Context, id string, wait time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	var body struct {
		Status string `json:"status"`
	}
	path := "/v1/orders/" + url.PathEscape(id) + "?wait=" + wait.Round(time.Second).String()
	status, err := a.do(ctx, http.MethodGet, path, nil, nil, &body)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d", path, status)
	}
	return body.Status, nil
}

// do sends a JSON request and decodes a JSON answer into out for 2xx codes.
func (a *bffAPI) do(ctx context.Context, method, path string, header http.Header, in, out any) (int, error) {
	resp, err := a.send(ctx, method, path, header, in, out)
	return resp.status, err
}

// response is what send learned of an answer besides its decoded body.
type response struct {
	status     int
	problem    bool // Content-Type application/problem+json
	retryAfter time.Duration
}

// send sends a JSON request and decodes a JSON answer into out for 2xx codes.
func (a *bffAPI) send(ctx context.Context, method, path string, header http.Header, in, out any) (response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.base, "/")+path, body)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
		// net/http would resend a request with an Idempotency-Key by itself
		// after some connection errors; every attempt must be our own, so
		// that the ledger knows each one whose fate is unknown.
		req.GetBody = nil
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/problem+json" {
		r.problem = true
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		r.retryAfter = time.Duration(s) * time.Second
	}
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return r, fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		// The answer was cut: for a POST, what it said may not be all of it.
		return r, fmt.Errorf("reading %s %s: %w", method, path, err)
	}
	return r, nil
}
