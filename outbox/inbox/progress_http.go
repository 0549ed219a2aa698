package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// ServeProgress serves GET /v1/progress and GET /healthz for a service that
// has no HTTP server of its own, on ln, until ctx ends; and, when stats is
// not nil, GET /metrics with the consumer's counts (RegisterMetrics) and the
// Go runtime's.
func ServeProgress(ctx context.Context, ln net.Listener, service string, q Querier, stats func() Stats) error {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/progress", ProgressHandler(service, q))
	if stats != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector())
		RegisterMetrics(reg, service, stats)
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
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
