package reporting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/outbox/inbox"
)

// Service is the reporting service: the consumer that keeps the read model
// and the HTTP API that serves reports and timelines from it. Create it with
// New; Handler may be served any number of times, Run at most once.
type Service struct {
	cfg      Config
	log      *slog.Logger
	db       DB
	formats  *Registry
	consumer *inbox.Consumer // nil without a Pulsar client
	metrics  *serviceMetrics
}

// New validates cfg and returns a Service ready to Run or to serve Handler.
func New(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		log:     cfg.Logger.With("service", "reporting"),
		db:      cfg.DB,
		formats: cfg.Formats,
	}
	if cfg.Pulsar != nil {
		if s.consumer, err = inbox.New(cfg.inboxConfig()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if s.metrics, err = newMetrics(cfg.Metrics, s.consumer, cfg.DB); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return s, nil
}

// Run consumes the order and payment events into the read model and serves
// Handler until ctx ends, then shuts the HTTP server down gracefully (at most
// ShutdownTimeout for requests in flight) and returns nil. It returns an
// error if it cannot listen or subscribe, or if either part fails; the other
// part is then stopped too.
func (s *Service) Run(ctx context.Context) error {
	if s.consumer == nil {
		return fmt.Errorf("%w: no pulsar client", ErrInvalidConfig)
	}
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listening on %s: %w", s.cfg.HTTPAddr, err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.consumer.Run(ctx); err != nil {
			return fmt.Errorf("consuming: %w", err)
		}
		return nil
	})
	g.Go(func() error { return s.serve(ctx, ln) })
	return g.Wait()
}

// serve serves Handler on ln until ctx ends, then shuts down.
func (s *Service) serve(ctx context.Context, ln net.Listener) error {
	// No write timeout: a large report may stream for a long time; its
	// request ends with its client, or with the shutdown below.
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("serving http", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("requests still running at shutdown; closing them", "timeout", s.cfg.ShutdownTimeout)
		err = srv.Close()
	}
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	if err != nil {
		return fmt.Errorf("shutting http down: %w", err)
	}
	return nil
}

// Stats returns the consumer's counts so far (zero without a Pulsar client).
// Safe for concurrent use.
func (s *Service) Stats() inbox.Stats {
	if s.consumer == nil {
		return inbox.Stats{}
	}
	return s.consumer.Stats()
}
