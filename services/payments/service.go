package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/failpoint"
	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Subscription is the Key_Shared subscription every payments instance shares.
const Subscription = "payments"

// Config configures a Service. DB and Client are required.
type Config struct {
	// DB is payments' database, connected as the service's role
	// alpes_payments.
	DB *pgxpool.Pool
	// Client is the Pulsar client the consumer subscribes with. The caller
	// owns it and closes it after Run returns.
	Client pulsar.Client
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// Topics are the deployment's topics, of its Pulsar tenant (ADR 0006):
	// payments consumes OrderEvents and writes PaymentEvents. The zero value
	// is eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics
	// Gateway decides every charge. Nil means DefaultGateway().
	Gateway *Gateway
	// Tuning tunes the consumer; zero fields take outbox/inbox's defaults.
	Tuning Tuning
}

// Tuning is passed through to the inbox consumer (see inbox.Config for
// each field's meaning and default).
type Tuning struct {
	// BatchSize is the most messages applied in one transaction.
	BatchSize int
	// BatchWait is how long a batch waits for more messages after its first.
	BatchWait time.Duration
	// MaxAttempts bounds the tries of a failing message before it is
	// dead-lettered.
	MaxAttempts int
	// RetryBackoff is the first wait between retries; it doubles per retry.
	RetryBackoff time.Duration
	// MaxBackoff caps every wait between retries.
	MaxBackoff time.Duration
	// ReceiveQueue is the Pulsar consumer's receiver queue size.
	ReceiveQueue int
	// Failpoints crash the process at the inbox's named points, for fault
	// tests; nil in production.
	Failpoints *failpoint.Set
	// Sweep configures the inbox sweep: its retention bounds how long
	// duplicates are recognised.
	Sweep inbox.Sweep
}

// Service is one instance of the payments service. Create it with New and
// start it with Run; Stats is safe to call from any goroutine.
type Service struct {
	log      *slog.Logger
	topics   eventcatalog.Topics
	gateway  Gateway
	consumer *inbox.Consumer
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
	s := &Service{log: cfg.Logger.With("service", "payments"), topics: topics, gateway: DefaultGateway()}
	if cfg.Gateway != nil {
		s.gateway = *cfg.Gateway
	}
	reg := inbox.NewRegistry()
	inbox.Handle(reg, s.charge)
	inbox.Skip[*ordersv1.OrderConfirmed](reg)
	inbox.Skip[*ordersv1.OrderRejected](reg)
	consumer, err := inbox.New(inbox.Config{
		Client:       cfg.Client,
		DB:           cfg.DB,
		Subscription: Subscription,
		Topics:       []string{topics.OrderEvents},
		Registry:     reg,
		Logger:       s.log,
		BatchSize:    cfg.Tuning.BatchSize,
		BatchWait:    cfg.Tuning.BatchWait,
		MaxAttempts:  cfg.Tuning.MaxAttempts,
		RetryBackoff: cfg.Tuning.RetryBackoff,
		MaxBackoff:   cfg.Tuning.MaxBackoff,
		ReceiveQueue: cfg.Tuning.ReceiveQueue,
		Failpoints:   cfg.Tuning.Failpoints,
		Sweep:        cfg.Tuning.Sweep,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring the payments consumer: %w", err)
	}
	s.consumer = consumer
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
