package orders

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
	"github.com/alpes/alpes/services/eventcatalog"
)

// Subscription is the Key_Shared subscription every orders instance shares.
const Subscription = "orders"

// Config configures a Service. DB and Client are required.
type Config struct {
	// DB is orders' database, connected as the service's role alpes_orders.
	DB *pgxpool.Pool
	// Client is the Pulsar client the consumer subscribes with. The caller
	// owns it and closes it after Run returns.
	Client pulsar.Client
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// Topics are the deployment's topics, of its Pulsar tenant (ADR 0006):
	// orders consumes OrderCommands and PaymentEvents and writes OrderEvents
	// and CatalogEvents. The zero value is eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics
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

// Service is one instance of the orders service. Create it with New and
// start it with Run; Stats is safe to call from any goroutine.
type Service struct {
	db       *pgxpool.Pool
	log      *slog.Logger
	topics   eventcatalog.Topics
	consumer *inbox.Consumer
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
	s := &Service{db: cfg.DB, log: cfg.Logger.With("service", "orders"), topics: topics}
	reg := inbox.NewRegistry()
	inbox.Handle(reg, s.placeOrder)
	inbox.Handle(reg, s.settle)
	consumer, err := inbox.New(inbox.Config{
		Client:       cfg.Client,
		DB:           cfg.DB,
		Subscription: Subscription,
		Topics:       []string{topics.OrderCommands, topics.PaymentEvents},
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
		return nil, fmt.Errorf("configuring the orders consumer: %w", err)
	}
	s.consumer = consumer
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
