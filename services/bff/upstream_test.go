package bff

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeReporting stands in for the reporting service's HTTP API, recording
// what reached it.
func fakeReporting(t *testing.T, seen chan<- *http.Request) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/orders/{id}/timeline", func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"order_id":%q,"entries":[]}`, r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/reports/orders", func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		if r.URL.Query().Get("format") != "csv" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"type":"about:blank","title":"Bad Request","status":400}`)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprint(w, "order_id,status\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestForwardsToReporting(t *testing.T) {
	seen := make(chan *http.Request, 10)
	rep := fakeReporting(t, seen)
	e := newEnv(t, func(c *Config) { c.ReportingURL = rep.URL })
	id := uuid.NewString()

	resp := e.do(http.MethodGet, "/v1/orders/"+id+"/timeline", nil, "X-Request-Id", "tl-1", "Authorization", "Bearer secret")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.body), id) {
		t.Fatalf("timeline: %d %s", resp.StatusCode, resp.body)
	}
	if r := <-seen; r.Header.Get("X-Request-Id") != "tl-1" || r.Header.Get("Authorization") != "" {
		t.Errorf("forwarded headers %v", r.Header)
	}
	resp = e.do(http.MethodGet, "/v1/reports/orders?format=csv", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv" || string(resp.body) != "order_id,status\n" {
		t.Errorf("report: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.body)
	}
	<-seen
	if resp = e.do(http.MethodGet, "/v1/reports/orders?format=xlsx", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("reporting's 400 not passed on: %d", resp.StatusCode)
	}
	<-seen
	checkProblem(t, e.do(http.MethodGet, "/v1/orders/nope/timeline", nil), http.StatusBadRequest, "id")
	if len(seen) != 0 {
		t.Error("an invalid id reached reporting")
	}

	rep.Close() // reporting down: 502
	checkProblem(t, e.do(http.MethodGet, "/v1/orders/"+id+"/timeline", nil), http.StatusBadGateway, "")
}

func TestReportingNotConfigured(t *testing.T) {
	e := newEnv(t)
	checkProblem(t, e.do(http.MethodGet, "/v1/reports/orders?format=csv", nil), http.StatusServiceUnavailable, "")
}

// TestReplicationAggregatesLag reads a relay's lag (and reports one that is
// down) beside the bff's own apply_progress, filled by the view consumer.
func TestReplicationAggregatesLag(t *testing.T) {
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"sources":[{"source":"bff","state":"streaming","bytes_behind":0}]}`)
	}))
	t.Cleanup(relay.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	e := newEnvWithBroker(t, func(c *Config) {
		c.RelayLagURLs = []string{relay.URL + "/v1/lag", down.URL + "/v1/lag"}
		c.RelayToken = "tok"
	})
	e.publish(e.topics().CatalogEvents, "SKU-1", productUpdated("SKU-1", "Cheese", 250, time.Now()))
	waitFor(t, "progress recorded", func() bool { return e.count(`SELECT count(*) FROM apply_progress`) == 1 })

	resp := e.do(http.MethodGet, "/v1/replication", nil)
	var rep replication
	resp.json(t, &rep)
	if len(rep.Relays) != 2 || len(rep.Relays[0].Sources) == 0 || rep.Relays[0].Error != "" || rep.Relays[1].Error == "" {
		t.Errorf("relays %s", resp.body)
	}
	if len(rep.Consumers) != 1 || rep.Consumers[0].Service != "bff" || len(rep.Consumers[0].Topics) != 1 ||
		rep.Consumers[0].Topics[0].Topic != e.topics().CatalogEvents || rep.Consumers[0].Topics[0].AppliedCount != 1 {
		t.Errorf("consumers %s", resp.body)
	}
}
