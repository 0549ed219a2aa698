package relay

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/alpes/alpes/internal/metrics"
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
//	GET /metrics          Prometheus metrics (metrics.go), with the Go runtime's and the process's
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
		mux.Handle("/metrics", metrics.Handler(r.newMetrics()))
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
