package orders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/outbox"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Subscription is the Key_Shared subscription every orders instance shares.
const Subscription = "orders"

// Config configures a Service. DB and Pulsar are required.
type Config struct {
	// DB is orders' database, connected as the service's role alpes_orders.
	DB *pgxpool.Pool
	// Pulsar is the client the consumer subscribes with. The caller owns it
	// and closes it after Run returns.
	Pulsar pulsar.Client
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// TracerProvider receives the service's spans: the consumer's, one per
	// message applied (inbox's Config.TracerProvider), and the outbox
	// appends the handlers make within them, which carry the trace on. Nil
	// or a no-op provider traces nothing.
	TracerProvider trace.TracerProvider
	// Topics are the deployment's topics, of its Pulsar tenant (ADR 0006):
	// orders consumes OrderCommands and PaymentEvents and writes OrderEvents
	// and CatalogEvents. The zero value is eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics
	// Consumer tunes the inbox consumer: its BatchSize, BatchWait,
	// BatchGap, MaxAttempts, RetryBackoff, MaxBackoff, ReceiveQueue, Sweep and
	// Failpoints are used (zero takes inbox's defaults). Its other fields
	// are set by the Service: subscription "orders", Topics' order commands
	// and payment events, the service's handlers, DB, Pulsar, Logger and
	// TracerProvider.
	Consumer inbox.Config
	// Metrics is the process's registry (internal/metrics.NewRegistry),
	// in which New registers the consumer's metrics (inbox's
	// Consumer.RegisterMetrics, named alpes_orders_…); give the same one to
	// the Pulsar client (ClientOptions.MetricsRegisterer) and serve it at
	// /metrics. Default: a new one, which Metrics returns.
	Metrics *prometheus.Registry
}

// Service is one instance of the orders service. Create it with New and
// start it with Run; Stats is safe to call from any goroutine.
type Service struct {
	db       *pgxpool.Pool
	log      *slog.Logger
	topics   eventcatalog.Topics
	outbox   outbox.Writer
	consumer *inbox.Consumer
	metrics  *prometheus.Registry
}

// New validates cfg and returns a Service ready to Run.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("orders: no database")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	topics, err := cfg.Topics.Resolve()
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	s := &Service{db: cfg.DB, log: cfg.Logger.With("service", "orders"), topics: topics, outbox: outbox.NewWriter(cfg.TracerProvider)}
	reg := inbox.NewRegistry()
	inbox.Handle(reg, s.placeOrder)
	inbox.Handle(reg, s.applyPayment)
	ic := cfg.Consumer
	ic.Client, ic.DB, ic.Logger, ic.TracerProvider = cfg.Pulsar, cfg.DB, s.log, cfg.TracerProvider
	ic.Subscription, ic.Topics, ic.Registry = Subscription, []string{topics.OrderCommands, topics.PaymentEvents}, reg
	consumer, err := inbox.New(ic)
	if err != nil {
		return nil, fmt.Errorf("configuring the orders consumer: %w", err)
	}
	s.consumer = consumer
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewRegistry()
	}
	if err := consumer.RegisterMetrics(cfg.Metrics, cfg.DB); err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	s.metrics = cfg.Metrics
	return s, nil
}

// Run publishes the catalogue's unpublished product states, then applies
// commands and payment events until ctx ends, when it returns nil. It
// returns an error when the catalogue cannot be published or the consumer
// cannot subscribe. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	n, err := s.publishCatalogue(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("publishing the catalogue: %w", err)
	}
	s.log.Info("catalogue published", "products", n)
	if err := s.consumer.Run(ctx); err != nil {
		return fmt.Errorf("consuming: %w", err)
	}
	return nil
}

// Stats returns what this instance's consumer has done so far.
func (s *Service) Stats() inbox.Stats { return s.consumer.Stats() }

// Ready reports whether the service can do its work now: its consumer is
// subscribed, and its database and the broker answer within ctx (inbox's
// Consumer.Ready); nil when it can. Safe for concurrent use.
func (s *Service) Ready(ctx context.Context) error { return s.consumer.Ready(ctx) }

// Metrics returns the registry holding the service's metrics (Config.Metrics).
func (s *Service) Metrics() *prometheus.Registry { return s.metrics }
