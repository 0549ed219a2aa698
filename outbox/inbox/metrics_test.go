package inbox_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/metrics/metricstest"
	"github.com/alpes/alpes/internal/testrun"
	"github.com/alpes/alpes/outbox/inbox"
)

// TestConsumerMetricsAndReadiness: once a consumer has applied messages,
// /metrics serves its counts, its apply and commit → applied histograms and
// its lag per topic; /readyz answers 200 while the consumer is subscribed
// with its database and broker up, and 503 once its database is gone,
// while /metrics still serves what it can.
func TestConsumerMetricsAndReadiness(t *testing.T) {
	e := newEnv(t)
	base := time.Now().Add(-time.Minute)
	var evs []event
	for i := range 3 {
		ev := placed("order-1", i)
		ev.commitTime = base.Add(time.Duration(i) * time.Second)
		evs = append(evs, ev)
	}
	e.publisher(e.ordersTopic).publish(evs...)

	pool := e.db.PoolAs(t, serviceRole) // the consumer's own, closed below
	cfg := e.config(effectRegistry())
	cfg.DB = pool
	c, err := inbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(context.Background()); !errors.Is(err, inbox.ErrNotSubscribed) {
		t.Errorf("Ready before Run: %v, want ErrNotSubscribed", err)
	}
	reg := metrics.NewRegistry()
	if err := c.RegisterMetrics(reg, pool); err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterMetrics(reg, pool); err == nil {
		t.Error("registering twice in one registry: no error")
	}
	testrun.Go(t, c.Run)
	e.waitFor("3 applied", func() bool { return c.Stats().Applied == 3 })

	url := serve(t, func(ctx context.Context, ln net.Listener) error {
		return inbox.ServeProgress(ctx, ln, service, pool, c.Ready, reg)
	})
	fams := metricstest.Scrape(t, url+"/metrics", "")
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_payments_events_applied_total":          dto.MetricType_COUNTER,
		"alpes_payments_events_duplicate_total":        dto.MetricType_COUNTER,
		"alpes_payments_inbox_apply_duration_seconds":  dto.MetricType_HISTOGRAM,
		"alpes_payments_inbox_commit_to_apply_seconds": dto.MetricType_HISTOGRAM,
		"alpes_payments_inbox_lag_seconds":             dto.MetricType_GAUGE,
	})
	if n, _ := fams.Value("alpes_payments_inbox_commit_to_apply_seconds", "topic", e.ordersTopic); n != 3 {
		t.Errorf("commit → applied observations of %s: %v, want 3", e.ordersTopic, n)
	}
	if n, _ := fams.Value("alpes_payments_inbox_apply_duration_seconds", "topic", e.ordersTopic); n < 1 {
		t.Errorf("apply transactions of %s: %v, want at least 1", e.ordersTopic, n)
	}
	if lag, ok := fams.Value("alpes_payments_inbox_lag_seconds", "topic", e.ordersTopic); !ok || lag < 58 {
		t.Errorf("lag of %s: %v (found %v), want the newest message's age, about 58 s", e.ordersTopic, lag, ok)
	}
	if code := getStatus(t, url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with everything up: %d, want 200", code)
	}

	pool.Close()
	if code := getStatus(t, url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database gone: %d, want 503", code)
	}
	fams = metricstest.Scrape(t, url+"/metrics", "")
	fams.Require(t, map[string]dto.MetricType{"alpes_payments_events_applied_total": dto.MetricType_COUNTER})
	if _, ok := fams["alpes_payments_inbox_lag_seconds"]; ok {
		t.Error("a lag served without its database")
	}
}

// serve runs a server on a loopback listener until the test ends and
// returns its base URL.
func serve(t *testing.T, run func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testrun.Go(t, func(ctx context.Context) error { return run(ctx, ln) })
	return "http://" + ln.Addr().String()
}

// getStatus GETs url and returns the status code.
func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
