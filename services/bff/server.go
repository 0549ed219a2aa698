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
	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/internal/httpapi"
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
		store:    &store{db: cfg.DB, commands: cfg.Topics.OrderCommands},
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
// checks both ways.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(httpapi.WithRequestID, s.accessLog, s.rateLimit)
	r.Post("/v1/orders", s.handle(s.postOrder))
	r.Get("/v1/orders/{id}", s.handle(s.getOrder))
	r.Get("/v1/orders/{id}/timeline", s.handle(s.forwardToReporting))
	r.Get("/v1/reports/orders", s.handle(s.forwardToReporting))
	r.Get("/v1/products", s.handle(s.listProducts))
	r.Get("/v1/replication", s.handle(s.getReplication))
	r.Get("/lag", s.serveLagPage)
	r.Get("/openapi.json", s.serveOpenAPI)
	r.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error { return errNotFound }))
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		httpapi.SetAllow(w, r)
		return errMethodNotAllowed
	}))
	return r
}

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
	var consumer *inbox.Consumer
	if s.cfg.Pulsar != nil {
		var err error
		ic := s.cfg.Consumer
		ic.Client, ic.DB, ic.Logger = s.cfg.Pulsar, s.cfg.DB, s.log
		ic.Subscription, ic.Topics, ic.Registry = Subscription, consumedTopics(s.cfg.Topics), newRegistry()
		consumer, err = inbox.New(ic)
		if err != nil {
			ln.Close()
			return fmt.Errorf("creating the view consumer: %w", err)
		}
	}
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
	if consumer != nil {
		g.Go(func() error { return consumer.Run(gctx) })
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
