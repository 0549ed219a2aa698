package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpes/alpes/internal/metrics"
)

// ProgressReport is how far one service has applied each topic: the body of
// its GET /v1/progress, which the bff gathers into GET /v1/replication.
type ProgressReport struct {
	Service string          `json:"service"`
	Topics  []TopicProgress `json:"topics"`
	// URL and Error are set by whoever fetched the report from elsewhere.
	URL   string `json:"url,omitempty"`
	Error string `json:"error,omitempty"`
}

// TopicProgress is one topic's line of a ProgressReport.
type TopicProgress struct {
	Topic           string    `json:"topic"`
	LastEventID     string    `json:"last_event_id"`
	LastCommittedAt time.Time `json:"last_committed_at"`
	LastAppliedAt   time.Time `json:"last_applied_at"`
	AppliedCount    int64     `json:"applied_count"`
	// LagSeconds is Progress.Lag: commit → applied of the newest message.
	LagSeconds float64 `json:"lag_seconds"`
}

// ReadProgressReport reads service's apply_progress as a ProgressReport.
func ReadProgressReport(ctx context.Context, service string, q Querier) (ProgressReport, error) {
	progress, err := ReadProgress(ctx, q)
	if err != nil {
		return ProgressReport{}, err
	}
	report := ProgressReport{Service: service, Topics: []TopicProgress{}}
	for _, p := range progress {
		report.Topics = append(report.Topics, TopicProgress{
			Topic: p.Topic, LastEventID: p.LastEventID, LastCommittedAt: p.LastCommittedAt.UTC(),
			LastAppliedAt: p.LastAppliedAt.UTC(), AppliedCount: p.AppliedCount, LagSeconds: p.Lag().Seconds(),
		})
	}
	return report, nil
}

// ProgressHandler serves GET /v1/progress for service from its database.
func ProgressHandler(service string, q Querier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		report, err := ReadProgressReport(ctx, service, q)
		if err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": 503,
				"detail": "reading apply_progress failed"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(report)
	})
}

// ReadyTimeout bounds the checks behind one GET /readyz.
const ReadyTimeout = 2 * time.Second

// ReadyHandler serves GET /readyz: 200 {"status":"ready"} when ready
// returns nil within ReadyTimeout, else 503 with a problem saying why.
// ready must not be nil.
func ReadyHandler(ready func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": "Not ready", "status": 503,
				"detail": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"status": "ready"})
	})
}

// ServeProgress serves, on ln until ctx ends, the HTTP endpoints of a
// service that has no HTTP API of its own:
//
//	GET /v1/progress  its apply_progress (ProgressHandler)
//	GET /healthz      200 while the process runs
//	GET /readyz       ReadyHandler(ready): the consumer can work now
//	GET /metrics      reg's metrics (internal/metrics.Handler), when reg is not nil
//
// ready is required; a service's is its Consumer's Ready.
func ServeProgress(ctx context.Context, ln net.Listener, service string, q Querier, ready func(context.Context) error, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/progress", ProgressHandler(service, q))
	mux.Handle("GET /readyz", ReadyHandler(ready))
	if reg != nil {
		mux.Handle("GET /metrics", metrics.Handler(reg))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
