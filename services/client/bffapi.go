package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// bffAPI speaks the bff's public HTTP API (services/bff's OpenAPI document).
type bffAPI struct {
	base string
	http *http.Client
}

type orderItem struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type order struct {
	CustomerID string      `json:"customer_id"`
	Address    string      `json:"address"`
	Items      []orderItem `json:"items"`
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

// placeOrder posts an order with a fresh idempotency key and returns the
// order id and HTTP status. A transport error is retried once with the same
// key, which the bff answers with the original response.
func (a *bffAPI) placeOrder(ctx context.Context, o order) (id string, status int, err error) {
	key := uuid.NewString()
	var body struct {
		OrderID string `json:"order_id"`
	}
	for attempt := 0; attempt < 2; attempt++ {
		status, err = a.do(ctx, http.MethodPost, "/v1/orders", http.Header{"Idempotency-Key": {key}}, o, &body)
		if err == nil {
			return body.OrderID, status, nil
		}
	}
	return "", 0, err
}

// awaitOrder long-polls the order's state for up to wait.
func (a *bffAPI) awaitOrder(ctx context.Context, id string, wait time.Duration) (string, error) {
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
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.base, "/")+path, body)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
