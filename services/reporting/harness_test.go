package reporting_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/eventcatalog"
	"github.com/alpes/alpes/services/reporting"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	role        = "alpes_reporting"
	waitTimeout = 60 * time.Second
)

// env is one test's world: its own database, and for tests of the consumer
// a broker (broker/brokertest) with a tenant of its own and a running
// Service.
type env struct {
	t      testing.TB
	db     *pgtest.DB
	admin  *pgxpool.Pool // superuser, for seeding and assertions
	app    *pgxpool.Pool // alpes_reporting, as the service connects
	broker *brokertest.Broker
	// topics are the test tenant's, which the Service consumes.
	topics  eventcatalog.Topics
	svc     *reporting.Service
	baseURL string
	stop    func() // stops the running Service, once
}

// newDBEnv returns an env with a database and the service's HTTP API served
// by httptest, without a broker or consumer: for tests of the read side.
func newDBEnv(t testing.TB, cfg reporting.Config) *env {
	t.Helper()
	db := pgtest.New(t, "reporting")
	e := &env{t: t, db: db, admin: db.Pool(t), app: db.PoolAs(t, role)}
	cfg.DB, cfg.Logger = e.app, testlog.New(t)
	svc, err := reporting.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	e.svc, e.baseURL = svc, srv.URL
	return e
}

// newEnv returns an env with a database, a broker, and the Service running
// (consumer and HTTP server, through Run) until the test ends.
func newEnv(t testing.TB) *env {
	t.Helper()
	b := brokertest.Start(t)
	topics, err := eventcatalog.TopicsFor(b.Tenant(t, eventcatalog.NamespaceOrders, eventcatalog.NamespacePayments))
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.New(t, "reporting")
	e := &env{t: t, db: db, admin: db.Pool(t), app: db.PoolAs(t, role), broker: b, topics: topics}

	e.start()
	return e
}

// start runs a new Service instance, with a client of its own, until the
// test ends or stop is called; e.svc and e.baseURL then refer to it.
func (e *env) start() {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	reg := metrics.NewRegistry() // the process's, as `alpes reporting` makes it
	svc, err := reporting.New(reporting.Config{
		DB: e.app, Pulsar: e.broker.ClientWithMetrics(e.t, reg), Topics: e.topics, Logger: testlog.New(e.t), Listener: ln,
		Consumer: inbox.Config{RetryBackoff: 10 * time.Millisecond}, Metrics: reg,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc, e.baseURL = svc, "http://"+ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			e.t.Error("Run did not return after its context ended")
		}
	}
	e.t.Cleanup(e.stop)
}

// client returns a new client of the broker, closed when the test ends.
func (e *env) client() pulsar.Client {
	e.t.Helper()
	return e.broker.Client(e.t)
}

// count returns the single integer a query yields, as the superuser.
func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	return pgtest.Count(e.t, e.admin, sql, args...)
}

// waitFor polls cond until it holds or waitTimeout passes.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	pgtest.WaitFor(e.t, waitTimeout, what, cond)
}

// get requests path and returns the response, closed when the test ends.
func (e *env) get(path string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.baseURL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// getJSON requests path, wants status and media type, and decodes the body.
func (e *env) getJSON(path string, status int, mediaType string, into any) {
	e.t.Helper()
	resp := e.get(path)
	if resp.StatusCode != status {
		e.t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, mediaType) {
		e.t.Fatalf("GET %s: Content-Type %q, want %s", path, ct, mediaType)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		e.t.Fatalf("GET %s: decoding: %v", path, err)
	}
}
