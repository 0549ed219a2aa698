package reporting

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Defaults of Config.
const (
	DefaultHTTPAddr        = "127.0.0.1:8084"
	DefaultFetchSize       = 500
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures a Service. DB is required; Pulsar is required by Run.
// Zero values take the defaults documented on each field.
type Config struct {
	// DB is reporting's database, connected as alpes_reporting. The caller
	// owns it and closes it after Run returns.
	DB DB
	// Pulsar is the client the consumer subscribes with. The caller owns it
	// and closes it after Run returns. A Service without one can serve HTTP
	// (Handler) but not Run.
	Pulsar pulsar.Client
	// Formats are the report formats served. Default: DefaultRegistry.
	Formats *Registry
	// Logger receives the service's logs. Default: discard.
	Logger *slog.Logger
	// TracerProvider receives the consumer's spans, one per message
	// recorded (inbox's Config.TracerProvider). Nil or a no-op provider
	// traces nothing.
	TracerProvider trace.TracerProvider
	// Topics are the deployment's topics, of its Pulsar tenant (ADR 0006),
	// of which reporting consumes OrderEvents and PaymentEvents. Default:
	// eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics

	// HTTPAddr is where Run listens. Default 127.0.0.1:8084.
	HTTPAddr string
	// Listener, if set, is served by Run instead of listening on HTTPAddr;
	// Run closes it.
	Listener net.Listener
	// ShutdownTimeout bounds how long Run waits for requests in flight once
	// its context ends, before it closes their connections. Default 10s.
	ShutdownTimeout time.Duration
	// FetchSize is how many report rows are fetched from the cursor at a
	// time, and so how many a report holds in memory. Default 500.
	FetchSize int

	// Consumer tunes the inbox consumer: its BatchSize, BatchWait,
	// BatchGap, MaxAttempts, RetryBackoff, MaxBackoff, ReceiveQueue, Sweep and
	// Failpoints are used (zero takes inbox's defaults). Its other fields
	// are set by the Service: subscription "reporting", Topics' order and
	// payment events, the projection's handlers, DB, Pulsar, Logger and
	// TracerProvider.
	Consumer inbox.Config
	// Metrics is the process's registry (internal/metrics.NewRegistry), in
	// which New registers the service's metrics (alpes_reporting_…) and
	// which /metrics serves; give the same one to the Pulsar client
	// (ClientOptions.MetricsRegisterer). Default: a new one. New registers
	// its metrics once: two Services need two registries.
	Metrics *prometheus.Registry
}

// ErrInvalidConfig is returned by New for a Config it cannot run with.
var ErrInvalidConfig = errors.New("invalid reporting config")

// withDefaults returns c with zero values set to their defaults, or an error
// wrapping ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.FetchSize == 0 {
		c.FetchSize = DefaultFetchSize
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewRegistry()
	}
	if c.Formats == nil {
		f, err := DefaultRegistry()
		if err != nil {
			return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		c.Formats = f
	}
	var errs []error
	topics, err := c.Topics.Resolve()
	if err != nil {
		errs = append(errs, err)
	}
	c.Topics = topics
	if c.DB == nil {
		errs = append(errs, errors.New("no database"))
	}
	if c.FetchSize < 1 {
		errs = append(errs, fmt.Errorf("fetch size %d: want at least 1", c.FetchSize))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %s: want 0 or more", c.ShutdownTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// inboxConfig is the consumer's configuration: c.Consumer's tunables with
// reporting's subscription, topics and handlers.
func (c Config) inboxConfig() inbox.Config {
	ic := c.Consumer
	ic.Client = c.Pulsar
	ic.DB = c.DB
	ic.Subscription = Subscription
	ic.Topics = Topics(c.Topics)
	ic.Registry = NewInboxRegistry()
	ic.Logger = c.Logger
	ic.TracerProvider = c.TracerProvider
	return ic
}
