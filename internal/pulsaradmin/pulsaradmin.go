// Package pulsaradmin is the small part of Pulsar's admin REST API that
// alpes uses: creating tenants and namespaces and reading and setting
// deduplication. It speaks to real Pulsar and to the embedded broker alike.
package pulsaradmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls one broker's admin API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the admin API at adminURL (http://host:port). A
// non-empty token is sent as a bearer token.
func New(adminURL, token string) *Client {
	return NewWithHTTPClient(adminURL, token, &http.Client{Timeout: 30 * time.Second})
}

// NewWithHTTPClient is New with the HTTP client to use, for a TLS
// configuration or a shorter timeout.
func NewWithHTTPClient(adminURL, token string, hc *http.Client) *Client {
	return &Client{base: strings.TrimRight(adminURL, "/"), token: token, http: hc}
}

// StatusError is an answer of the admin API other than success.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Code, http.StatusText(e.Code), e.Body)
}

// IsStatus reports whether err is an admin answer with the given code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out when out is not nil and the answer has a body.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: strings.TrimSpace(string(raw))}
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// EnsureTenant creates tenant, allowed on every cluster of the broker, unless
// it exists.
func (c *Client) EnsureTenant(ctx context.Context, tenant string) error {
	var clusters []string
	if err := c.do(ctx, http.MethodGet, "/admin/v2/clusters", nil, &clusters); err != nil && !IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("listing clusters: %w", err)
	}
	if len(clusters) == 0 {
		clusters = []string{"standalone"}
	}
	err := c.do(ctx, http.MethodPut, "/admin/v2/tenants/"+tenant, map[string]any{"allowedClusters": clusters}, nil)
	if err != nil && !IsStatus(err, http.StatusConflict) {
		return fmt.Errorf("creating tenant %s: %w", tenant, err)
	}
	return nil
}

// EnsureNamespace creates namespace (tenant/name) and its tenant unless they
// exist, and sets its deduplication policy to dedup.
func (c *Client) EnsureNamespace(ctx context.Context, namespace string, dedup bool) error {
	tenant, _, ok := strings.Cut(namespace, "/")
	if !ok {
		return fmt.Errorf("namespace %q is not tenant/name", namespace)
	}
	if err := c.EnsureTenant(ctx, tenant); err != nil {
		return err
	}
	err := c.do(ctx, http.MethodPut, "/admin/v2/namespaces/"+namespace, nil, nil)
	if err != nil && !IsStatus(err, http.StatusConflict) {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	return c.SetNamespaceDeduplication(ctx, namespace, dedup)
}

// RemoveNamespaceDeduplication removes namespace's deduplication policy, so
// that the broker's default applies.
func (c *Client) RemoveNamespaceDeduplication(ctx context.Context, namespace string) error {
	if err := c.do(ctx, http.MethodDelete, "/admin/v2/namespaces/"+namespace+"/deduplication", nil, nil); err != nil {
		return fmt.Errorf("removing the deduplication policy of %s: %w", namespace, err)
	}
	return nil
}

// SetTopicDeduplication sets the deduplication policy of topic
// (persistent://tenant/ns/name), which must exist on real Pulsar. Pulsar
// applies topic policies asynchronously: read it back to wait for it.
func (c *Client) SetTopicDeduplication(ctx context.Context, topic string, on bool) error {
	domain, tenant, ns, local, err := splitTopic(topic)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, "/admin/v2/"+domain+"/"+tenant+"/"+ns+"/"+local+"/deduplicationEnabled", on, nil); err != nil {
		return fmt.Errorf("setting deduplication of %s: %w", topic, err)
	}
	return nil
}

// CreateTopic creates the non-partitioned topic unless it exists.
func (c *Client) CreateTopic(ctx context.Context, topic string) error {
	domain, tenant, ns, local, err := splitTopic(topic)
	if err != nil {
		return err
	}
	err = c.do(ctx, http.MethodPut, "/admin/v2/"+domain+"/"+tenant+"/"+ns+"/"+local, nil, nil)
	if err != nil && !IsStatus(err, http.StatusConflict) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

// SetNamespaceDeduplication sets namespace's deduplication policy.
func (c *Client) SetNamespaceDeduplication(ctx context.Context, namespace string, on bool) error {
	if err := c.do(ctx, http.MethodPost, "/admin/v2/namespaces/"+namespace+"/deduplication", on, nil); err != nil {
		return fmt.Errorf("setting deduplication of %s: %w", namespace, err)
	}
	return nil
}
