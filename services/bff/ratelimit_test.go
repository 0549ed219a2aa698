package bff

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// clientFrom returns an HTTP client whose connections come from local
// address ip (any 127.0.0.0/8 address works on Linux), so one test can act
// as several clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}}
}

// TestRateLimitPerClient covers FAULTS row 24: a flood from one client is
// answered 429 with Retry-After while another client is served.
func TestRateLimitPerClient(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit, c.RateBurst = 1, 5 })
	flooder, other := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	get := func(c *http.Client) response {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/products", nil)
		return e.send(c, req)
	}
	limited := 0
	for range 50 {
		resp := get(flooder)
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			checkProblem(t, resp, http.StatusTooManyRequests, "")
		}
	}
	if limited < 40 {
		t.Errorf("%d of 50 flood requests limited, want at least 40", limited)
	}
	for range 5 {
		if resp := get(other); resp.StatusCode != http.StatusOK {
			t.Fatalf("other client: %d %s", resp.StatusCode, resp.body)
		}
	}
}

func TestLimiterRefillsAndBoundsClients(t *testing.T) {
	l := newLimiter(2, 2, 2)
	now := time.Now()
	for i, want := range []bool{true, true, false} {
		if _, ok := l.allow("a", now); ok != want {
			t.Fatalf("request %d: allowed %v", i, ok)
		}
	}
	if wait, ok := l.allow("a", now); ok || wait != 500*time.Millisecond {
		t.Errorf("wait %s", wait)
	}
	if _, ok := l.allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Error("no token after the refill time")
	}
	l.allow("b", now)
	if _, ok := l.allow("c", now); ok {
		t.Error("a third client admitted while two busy ones are remembered")
	}
	if _, ok := l.allow("c", now.Add(time.Hour)); !ok {
		t.Error("idle buckets not evicted")
	}
}
