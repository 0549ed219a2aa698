package relay

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LagReport is the body of GET /v1/lag.
type LagReport struct {
	Sources []SourceLag `json:"sources"`
}

// Handler serves the relay's HTTP endpoints:
//
//	GET /v1/lag           every source's replication state (LagReport)
//	GET /v1/lag/{source}  one source's (SourceLag), 404 for an unknown one
//	GET /healthz          200 while the process runs
//	GET /readyz           200 when every source streams or waits as a standby
//	GET /metrics          Prometheus metrics
//
// With Config.HTTPToken set, /v1/lag and /metrics require it as a bearer token.
func (r *Relay) Handler() http.Handler {
	mux := chi.NewRouter()
	mux.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Get("/readyz", r.readyz)
	mux.Group(func(mux chi.Router) {
		mux.Use(r.requireToken)
		mux.Get("/v1/lag", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, LagReport{Sources: r.Lag()})
		})
		mux.Get("/v1/lag/{source}", func(w http.ResponseWriter, req *http.Request) {
			name := chi.URLParam(req, "source")
			for _, l := range r.Lag() {
				if l.Source == name {
					writeJSON(w, http.StatusOK, l)
					return
				}
			}
			writeProblem(w, http.StatusNotFound, "unknown source", "this relay serves no source named "+name)
		})
		mux.Handle("/metrics", promhttp.HandlerFor(r.metrics(), promhttp.HandlerOpts{}))
	})
	mux.NotFound(func(w http.ResponseWriter, req *http.Request) {
		writeProblem(w, http.StatusNotFound, "not found", req.URL.Path+" is not an endpoint of the relay")
	})
	return mux
}

func (r *Relay) readyz(w http.ResponseWriter, _ *http.Request) {
	states := map[string]string{}
	ready := true
	for _, l := range r.Lag() {
		states[l.Source] = l.State
		if l.State != StateStreaming && l.State != StateWaiting {
			ready = false
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "sources": states})
}

func (r *Relay) requireToken(next http.Handler) http.Handler {
	if r.cfg.HTTPToken == "" {
		return next
	}
	want := []byte("Bearer " + r.cfg.HTTPToken)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got := []byte(req.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="alpes relay"`)
			writeProblem(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, req)
	})
}

// metrics builds a registry whose gauges read the sources' state at scrape time.
func (r *Relay) metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	for _, s := range r.runners {
		labels := prometheus.Labels{"source": s.cfg.Name}
		lag := func() SourceLag { return s.stats.lag(s.cfg, time.Now()) }
		gauge := func(name, help string, f func() float64) {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
		}
		counter := func(name, help string, f func() float64) {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
		}
		gauge("alpes_relay_bytes_behind", "WAL bytes not yet confirmed as published.", func() float64 { return float64(lag().BytesBehind) })
		gauge("alpes_relay_seconds_behind", "Age of the oldest transaction not yet confirmed as published.", func() float64 { return lag().SecondsBehind })
		gauge("alpes_relay_in_flight", "Messages sent and awaiting broker receipts.", func() float64 { return float64(lag().InFlight) })
		gauge("alpes_relay_streaming", "1 when this instance streams the source.", func() float64 {
			if lag().State == StateStreaming {
				return 1
			}
			return 0
		})
		counter("alpes_relay_messages_published_total", "Messages the broker receipted as new.", func() float64 { return float64(s.stats.published.Load()) })
		counter("alpes_relay_duplicates_dropped_total", "Re-sent messages the broker receipted as duplicates.", func() float64 { return float64(s.stats.duplicates.Load()) })
		counter("alpes_relay_quarantined_total", "Outbox rows sent to the quarantine topic.", func() float64 { return float64(s.stats.quarantined.Load()) })
		counter("alpes_relay_outbox_swept_total", "Outbox rows deleted by the retention sweep.", func() float64 { return float64(s.stats.swept.Load()) })
		counter("alpes_relay_outbox_sweep_batches_total", "DELETE transactions run by the retention sweep.", func() float64 { return float64(s.stats.sweepBatches.Load()) })
	}
	return reg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
}
