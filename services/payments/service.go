package payments

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
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Subscription is the Key_Shared subscription every payments instance shares.
const Subscription = "payments"

// Config configures a Service. DB and Pulsar are required.
type Config struct {
	// DB is payments' database, connected as the service's role
	// alpes_payments.
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
	// payments consumes OrderEvents and writes PaymentEvents. The zero value
	// is eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics
	// Gateway decides every charge. Nil means DefaultGateway().
	Gateway *Gateway
	// Consumer tunes the inbox consumer: its BatchSize, BatchWait,
	// BatchGap, MaxAttempts, RetryBackoff, MaxBackoff, ReceiveQueue, Sweep and
	// Failpoints are used (zero takes inbox's defaults). Its other fields
	// are set by the Service: subscription "payments", Topics' order
	// events, the service's handlers, DB, Pulsar, Logger and TracerProvider.
	Consumer inbox.Config
	// Metrics is the process's registry (internal/metrics.NewRegistry),
	// in which New registers the consumer's metrics (inbox's
	// Consumer.RegisterMetrics, named alpes_payments_…); give the same one to
	// the Pulsar client (ClientOptions.MetricsRegisterer) and serve it at
	// /metrics. Default: a new one, which Metrics returns.
	Metrics *prometheus.Registry
}

// Service is one instance of the payments service. Create it with New and
// start it with Run; Stats is safe to call from any goroutine.
type Service struct {
	log      *slog.Logger
	topics   eventcatalog.Topics
	gateway  Gateway
	outbox   outbox.Writer
	consumer *inbox.Consumer
	metrics  *prometheus.Registry
}

// New validates cfg and returns a Service ready to Run.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("payments: no database")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	topics, err := cfg.Topics.Resolve()
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	s := &Service{log: cfg.Logger.With("service", "payments"), topics: topics, gateway: DefaultGateway(),
		outbox: outbox.NewWriter(cfg.TracerProvider)}
	if cfg.Gateway != nil {
		s.gateway = *cfg.Gateway
	}
	reg := inbox.NewRegistry()
	inbox.Handle(reg, s.charge)
	inbox.Skip[*ordersv1.OrderConfirmed](reg)
	inbox.Skip[*ordersv1.OrderRejected](reg)
	ic := cfg.Consumer
	ic.Client, ic.DB, ic.Logger, ic.TracerProvider = cfg.Pulsar, cfg.DB, s.log, cfg.TracerProvider
	ic.Subscription, ic.Topics, ic.Registry = Subscription, []string{topics.OrderEvents}, reg
	consumer, err := inbox.New(ic)
	if err != nil {
		return nil, fmt.Errorf("configuring the payments consumer: %w", err)
	}
	s.consumer = consumer
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewRegistry()
	}
	if err := consumer.RegisterMetrics(cfg.Metrics, cfg.DB); err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	s.metrics = cfg.Metrics
	return s, nil
}

// Run charges placed orders until ctx ends, when it returns nil. It returns
// an error when the consumer cannot subscribe. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
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
