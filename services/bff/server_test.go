package bff

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/services/eventcatalog"
)

// TestDatabaseUnreachable covers FAULTS row 3: with the database down, the
// API answers 503 problems, promptly, rather than 500s or hung requests.
func TestDatabaseUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing answers on once closed
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pool, err := pgxpool.New(context.Background(), "postgres://alpes_bff@"+addr+"/bff?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{t: t}
	e.start(Config{DB: pool, Logger: testlog.New(t), DBTimeout: 3 * time.Second})
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/orders", validBody},
		{http.MethodGet, "/v1/orders/01a216d2-847e-7c0f-837b-61282abdcd9c?wait=1s", ""},
		{http.MethodGet, "/v1/products", ""},
	} {
		start := time.Now()
		resp := e.do(tc.method, tc.path, strings.NewReader(tc.body), "Idempotency-Key", "down")
		checkProblem(t, resp, http.StatusServiceUnavailable, "")
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("%s %s took %s", tc.method, tc.path, el)
		}
	}
}

// TestGracefulShutdown ends Serve while a long poll waits: the poll is
// answered with the current view, and Serve returns nil within the timeout.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t) // a bff to create the order with
	id := e.placeOrder("shutdown")

	srv, err := New(Config{DB: e.app, Logger: testlog.New(t), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	polled := make(chan response, 1)
	other := &env{t: t, url: "http://" + ln.Addr().String()}
	go func() {
		resp, err := http.Get(other.url + "/v1/orders/" + id + "?wait=25s")
		if err != nil {
			t.Error(err)
			polled <- response{}
			return
		}
		defer resp.Body.Close()
		polled <- response{Response: resp}
	}()
	waitFor(t, "the long poll to wait", func() bool {
		srv.notify.mu.Lock()
		defer srv.notify.mu.Unlock()
		return len(srv.notify.waiters[id]) == 1
	})
	start := time.Now()
	cancel()
	select {
	case resp := <-polled:
		if resp.Response == nil || resp.StatusCode != http.StatusOK {
			t.Errorf("long poll answered %v", resp.Response)
		}
	case <-time.After(waitTimeout):
		t.Fatal("long poll not released")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("shutdown took %s", el)
	}
}

func TestRequestIDs(t *testing.T) {
	e := newEnv(t)
	minted := e.do(http.MethodGet, "/v1/products", nil).Header.Get("X-Request-Id")
	if len(minted) != 36 {
		t.Errorf("minted request id %q", minted)
	}
	if got := e.do(http.MethodGet, "/v1/products", nil, "X-Request-Id", "abc-123").Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("request id %q, want the client's", got)
	}
	bad := "evil\" injected=1"
	if got := e.do(http.MethodGet, "/v1/products", nil, "X-Request-Id", bad).Header.Get("X-Request-Id"); got == bad || got == "" {
		t.Errorf("unsafe request id %q echoed", got)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("a config without a database was accepted")
	}
	mixed, err := eventcatalog.TopicsFor("mine")
	if err != nil {
		t.Fatal(err)
	}
	mixed.OrderCommands = eventcatalog.DefaultTopics().OrderCommands
	if _, err := New(Config{Topics: mixed}); !errors.Is(err, eventcatalog.ErrInvalidTenant) {
		t.Errorf("topics of two tenants: %v, want ErrInvalidTenant", err)
	}
}
