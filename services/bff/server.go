package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/internal/httpapi"
	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/outbox"
	"github.com/alpes/alpes/outbox/inbox"
)

// Server is the bff: the HTTP API and the view consumer. Create it with New
// and run it with Run (or Serve); its handler is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store
	limiter *limiter
	notify  *notifier
	handler http.Handler
	// upstream calls reporting and the relays; reporting forwards to it.
	upstream  *http.Client
	reporting *httputil.ReverseProxy
	// consumer is the view consumer; nil without Config.Pulsar.
	consumer *inbox.Consumer
	// durations observes every request's latency by route and code.
	durations func(http.Handler) http.Handler
	// tracer makes the requests' server spans; nil when tracing is off.
	tracer trace.Tracer

	// stopping is closed when a graceful shutdown begins, to release long polls.
	stopping chan struct{}
	stopOnce sync.Once
}

// New validates cfg and returns a Server ready to run.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("service", "bff"),
		store:    &store{db: cfg.DB, commands: cfg.Topics.OrderCommands, outbox: outbox.NewWriter(cfg.TracerProvider)},
		tracer:   tracing.Tracer(cfg.TracerProvider),
		limiter:  newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.MaxClients),
		notify:   newNotifier(),
		stopping: make(chan struct{}),
		upstream: &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			ResponseHeaderTimeout: cfg.UpstreamTimeout,
			IdleConnTimeout:       time.Minute,
			MaxIdleConnsPerHost:   16,
		}},
	}
	if s.reporting, err = s.newReportingProxy(cfg.ReportingURL); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.Pulsar != nil {
		ic := cfg.Consumer
		ic.Client, ic.DB, ic.Logger, ic.TracerProvider = cfg.Pulsar, cfg.DB, s.log, cfg.TracerProvider
		ic.Subscription, ic.Topics, ic.Registry = Subscription, consumedTopics(cfg.Topics), newRegistry()
		if s.consumer, err = inbox.New(ic); err != nil {
			return nil, fmt.Errorf("%w: the view consumer: %w", ErrInvalidConfig, err)
		}
		if err := s.consumer.RegisterMetrics(cfg.Metrics, cfg.DB); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	s.durations = metrics.HTTPDurations(cfg.Metrics, "alpes_bff_")
	s.handler = s.routes()
	return s, nil
}

// handlerFunc is a handler that leaves error responses to writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// routes builds the router. Every route here must be in openapi.json; a test
// checks both ways. Every request is timed (metrics.HTTPDurations); the API,
// and the 404s and 405s, are traced, logged and rate limited, the probes and
// /metrics are not.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(httpapi.WithRequestID, s.durations)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.handle(s.readyz))
	r.Method(http.MethodGet, "/metrics", metrics.Handler(s.cfg.Metrics))
	r.Group(func(r chi.Router) {
		r.Use(s.traceRequest, s.accessLog, s.rateLimit)
		r.Post("/v1/orders", s.handle(s.postOrder))
		r.Get("/v1/orders/{id}", s.handle(s.getOrder))
		r.Get("/v1/orders/{id}/timeline", s.handle(s.forwardToReporting))
		r.Get("/v1/reports/orders", s.handle(s.forwardToReporting))
		r.Get("/v1/products", s.handle(s.listProducts))
		r.Get("/v1/replication", s.handle(s.getReplication))
		r.Get("/lag", s.serveLagPage)
		r.Get("/openapi.json", s.serveOpenAPI)
	})
	logged := func(h http.Handler) http.HandlerFunc { return s.traceRequest(s.accessLog(s.rateLimit(h))).ServeHTTP }
	r.NotFound(logged(s.handle(func(http.ResponseWriter, *http.Request) error { return errNotFound })))
	r.MethodNotAllowed(logged(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		httpapi.SetAllow(w, r)
		return errMethodNotAllowed
	})))
	return r
}

// readyz answers 200 when the bff can do its work now: its database
// answers a ping and, when it consumes, its view consumer is subscribed and
// the broker answers (inbox's Consumer.Ready), all within
// inbox.ReadyTimeout; else 503 with a problem saying why.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), inbox.ReadyTimeout)
	defer cancel()
	if err := s.cfg.DB.Ping(ctx); err != nil {
		return &notReadyError{fmt.Errorf("the database does not answer: %w", err)}
	}
	if s.consumer != nil {
		if err := s.consumer.Ready(ctx); err != nil {
			return &notReadyError{err}
		}
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
	return nil
}

// notReadyError is why the bff cannot do its work now (503).
type notReadyError struct{ err error }

func (e *notReadyError) Error() string { return "not ready: " + e.err.Error() }
func (e *notReadyError) Unwrap() error { return e.err }

// Metrics returns the registry holding the bff's metrics (Config.Metrics).
func (s *Server) Metrics() *prometheus.Registry { return s.cfg.Metrics }

// Handler returns the HTTP API, for tests and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on Config.HTTPAddr and serves until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.HTTPAddr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln, runs the view consumer (when Config.Pulsar is
// set), the long-poll listener and the idempotency sweep, until ctx ends or
// one of them fails. Then it shuts the HTTP server down gracefully: it stops
// accepting, releases long polls with their current view, and waits up to
// Config.ShutdownTimeout for requests in progress. Serve (or Run) may be
// called once per Server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		ReadTimeout:       defaultReadTimeout, // a slow body cannot hold a connection for long
		IdleTimeout:       defaultIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.stop)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
			return fmt.Errorf("shutting down http: %w", err)
		}
		return nil
	})
	g.Go(func() error { return s.notify.listen(gctx, s.cfg.DB, s.log) })
	g.Go(func() error { return s.sweep(gctx) })
	if s.consumer != nil {
		g.Go(func() error { return s.consumer.Run(gctx) })
	}
	s.log.Info("serving", "addr", ln.Addr().String())
	return g.Wait()
}

// stop releases long polls; called when the HTTP server begins shutting down.
func (s *Server) stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// sweep deletes expired idempotency records now and then until ctx ends.
func (s *Server) sweep(ctx context.Context) error {
	t := time.NewTicker(defaultSweepInterval)
	defer t.Stop()
	for {
		if n, err := s.store.sweepKeys(ctx, s.cfg.IdempotencyTTL); err != nil && ctx.Err() == nil {
			s.log.Warn("sweeping idempotency records", "err", err)
		} else if n > 0 {
			s.log.Info("swept idempotency records", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
