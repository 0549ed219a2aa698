package bff

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/services/eventcatalog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const waitTimeout = 60 * time.Second

// env is one test's bff: its own database and server.
type env struct {
	t      testing.TB
	db     *pgtest.DB
	admin  *pgxpool.Pool // superuser, for assertions
	app    *pgxpool.Pool // alpes_bff, as the service connects
	srv    *Server
	url    string
	broker *brokertest.Broker // set by withBroker
	client pulsar.Client
}

// topics are the topics the bff writes and reads: the test tenant's with a
// broker, the default tenant's without.
func (e *env) topics() eventcatalog.Topics { return e.srv.cfg.Topics }

// newEnv starts a bff on a fresh database over httptest; tweak adjusts its
// config. The long-poll listener runs; the view consumer does not.
func newEnv(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	db := pgtest.New(t, "bff")
	e := &env{t: t, db: db, admin: db.Pool(t), app: db.PoolAs(t, "alpes_bff")}
	cfg := Config{DB: e.app, Logger: testlog.New(t)}
	for _, f := range tweak {
		f(&cfg)
	}
	e.start(cfg)
	return e
}

// newEnvWithBroker is newEnv plus a broker (broker/brokertest), a tenant
// of the test's own on it, and the view consumer, all run by Serve as in
// production.
func newEnvWithBroker(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	b := brokertest.Start(t)
	topics, err := eventcatalog.TopicsFor(b.Tenant(t, eventcatalog.Namespaces()...))
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry() // the process's, as `alpes bff` makes it
	c := b.ClientWithMetrics(t, reg)
	useBroker := func(cfg *Config) { cfg.Pulsar, cfg.Topics, cfg.Metrics = c, topics, reg }
	return newEnv(t, append([]func(*Config){useBroker}, tweak...)...).withBroker(b, c)
}

func (e *env) withBroker(b *brokertest.Broker, c pulsar.Client) *env {
	e.broker, e.client = b, c
	return e
}

// start runs Serve on a loopback listener until the test ends.
func (e *env) start(cfg Config) {
	e.t.Helper()
	srv, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitTimeout):
			e.t.Error("Serve did not return")
		}
	})
	e.srv, e.url = srv, "http://"+ln.Addr().String()
}

// response is an HTTP answer, body read.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
}

// do sends a request to the bff with headers given as name, value pairs.
func (e *env) do(method, path string, body io.Reader, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.send(http.DefaultClient, req)
}

func (e *env) send(c *http.Client, req *http.Request) response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{Response: resp, body: b}
}

// post sends POST /v1/orders with an Idempotency-Key.
func (e *env) post(key, body string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/orders", strings.NewReader(body), "Idempotency-Key", key, "Content-Type", "application/json")
}

// count returns the single integer a query yields, as superuser.
func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	return pgtest.Count(e.t, e.admin, sql, args...)
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	pgtest.WaitFor(t, waitTimeout, what, cond)
}

const validBody = `{"customer_id":"c-1","address":"1 Main St","items":[{"sku":"SKU-1","quantity":2}]}`
