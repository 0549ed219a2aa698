package bff

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Defaults of Config's tunables.
const (
	DefaultHTTPAddr          = "127.0.0.1:8000"
	DefaultMaxBodyBytes      = 64 << 10
	DefaultMaxWait           = 30 * time.Second
	DefaultPollInterval      = 5 * time.Second
	DefaultRateLimit         = 50 // requests per second per client
	DefaultRateBurst         = 100
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultDBTimeout         = 5 * time.Second
	DefaultIdempotencyTTL    = 24 * time.Hour
	DefaultMaxClients        = 10000
	DefaultUpstreamTimeout   = 10 * time.Second
	defaultSweepInterval     = 10 * time.Minute
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
)

// Config configures a Server. DB is required; zero tunables take the
// defaults documented on their fields.
type Config struct {
	// HTTPAddr is where Run listens. Default 127.0.0.1:8000.
	HTTPAddr string
	// DB is the bff's database, connected as alpes_bff. The caller owns it.
	// Serve holds one of its connections for LISTEN (long polls), so it
	// needs at least two.
	DB *pgxpool.Pool
	// Pulsar is the client the view consumer subscribes with. When nil, Run
	// serves HTTP only (the order view and product replica then do not move).
	// The caller owns it and closes it after Run returns.
	Pulsar pulsar.Client
	// Logger receives access and error logs. Default: discard.
	Logger *slog.Logger
	// TracerProvider receives the bff's spans: a server span per API
	// request ("POST /v1/orders", a child of the client's W3C traceparent
	// when it sends one), the outbox append of each PlaceOrder within it,
	// and the view consumer's spans (inbox's Config.TracerProvider). Nil or
	// a no-op provider traces nothing; an incoming traceparent is then
	// still carried, untouched, into the PlaceOrder command.
	TracerProvider trace.TracerProvider
	// Topics are the deployment's topics, of its Pulsar tenant (ADR 0006):
	// the bff writes PlaceOrder to OrderCommands and its view consumer reads
	// OrderEvents and CatalogEvents. Default: eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics
	// Consumer tunes the view consumer: its BatchSize, BatchWait,
	// BatchGap, MaxAttempts, RetryBackoff, MaxBackoff, ReceiveQueue, Sweep and
	// Failpoints are used (zero takes inbox's defaults). Its other fields
	// are set by the Server: subscription "bff", Topics' order and catalogue
	// events, the view's handlers, DB, Pulsar, Logger and TracerProvider.
	Consumer inbox.Config
	// Metrics is the process's registry (internal/metrics.NewRegistry), in
	// which New registers the bff's metrics (alpes_bff_…: HTTP latencies,
	// the view consumer's) and which GET /metrics serves; give the same one
	// to the Pulsar client (ClientOptions.MetricsRegisterer). Default: a
	// new one. New registers its metrics once: two Servers need two
	// registries.
	Metrics *prometheus.Registry

	// MaxBodyBytes bounds a request body; larger bodies get 413. Default 64 KiB.
	MaxBodyBytes int64
	// MaxWait bounds ?wait= on GET /v1/orders/{id}. Default 30s.
	MaxWait time.Duration
	// PollInterval is how often a long poll re-reads its order besides
	// being woken by notifications. Default 5s; at least 50ms. It is a last
	// safety net, so it is long: notifications wake waiters, and the listener
	// wakes them all after it reconnects. At 1s, every order awaiting its
	// outcome read its view once a second, so a backlog of n orders cost n
	// reads/s and a bff that fell behind fell further behind
	// (docs/profiles.md).
	PollInterval time.Duration
	// RateLimit is each client's sustained requests per second. Default 50.
	RateLimit float64
	// RateBurst is each client's bucket size. Default 100.
	RateBurst int
	// MaxClients bounds how many clients' buckets are remembered. Default 10000.
	MaxClients int
	// ClientKey names the client a request counts against for rate
	// limiting. Default: the remote IP address. Behind a trusted proxy, use
	// the forwarded address instead.
	ClientKey func(*http.Request) string
	// ShutdownTimeout bounds the graceful shutdown of the HTTP server. Default 10s.
	ShutdownTimeout time.Duration
	// DBTimeout bounds the database work of one request, so an unreachable
	// database yields 503 rather than a hung request. Default 5s.
	DBTimeout time.Duration
	// IdempotencyTTL is how long idempotency records are kept. Default 24h.
	IdempotencyTTL time.Duration

	// ReportingURL is the reporting service's HTTP base URL, e.g.
	// http://127.0.0.1:8083, which answers /v1/orders/{id}/timeline and
	// /v1/reports/orders. Empty: those routes answer 503.
	ReportingURL string
	// RelayLagURLs are the relays' lag endpoints, e.g.
	// http://127.0.0.1:8081/v1/lag, aggregated by GET /v1/replication.
	RelayLagURLs []string
	// ProgressURLs are other services' GET /v1/progress endpoints (orders,
	// payments, reporting), whose applied lag GET /v1/replication shows
	// beside the bff's own.
	ProgressURLs []string
	// RelayToken is the bearer token the relays' lag endpoints require, if any.
	RelayToken string
	// UpstreamTimeout bounds the wait for reporting's or a relay's response
	// headers. Default 10s.
	UpstreamTimeout time.Duration
}

// ErrInvalidConfig is returned by New for a Config it cannot run with.
var ErrInvalidConfig = errors.New("invalid bff config")

func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewRegistry()
	}
	if c.ClientKey == nil {
		c.ClientKey = remoteIP
	}
	setDefault(&c.HTTPAddr, DefaultHTTPAddr)
	setDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&c.MaxWait, DefaultMaxWait)
	setDefault(&c.PollInterval, DefaultPollInterval)
	setDefault(&c.RateLimit, DefaultRateLimit)
	setDefault(&c.RateBurst, DefaultRateBurst)
	setDefault(&c.MaxClients, DefaultMaxClients)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.DBTimeout, DefaultDBTimeout)
	setDefault(&c.IdempotencyTTL, DefaultIdempotencyTTL)
	setDefault(&c.UpstreamTimeout, DefaultUpstreamTimeout)

	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	topics, err := c.Topics.Resolve()
	if err != nil {
		errs = append(errs, err)
	}
	c.Topics = topics
	check(c.DB != nil, "no database")
	check(c.MaxBodyBytes > 0, "max body bytes %d: want more than 0", c.MaxBodyBytes)
	check(c.MaxWait > 0, "max wait %s: want more than 0", c.MaxWait)
	check(c.PollInterval >= 50*time.Millisecond, "poll interval %s: want at least 50ms", c.PollInterval)
	check(c.RateLimit > 0, "rate limit %g: want more than 0", c.RateLimit)
	check(c.RateBurst > 0, "rate burst %d: want at least 1", c.RateBurst)
	check(c.MaxClients > 0, "max clients %d: want at least 1", c.MaxClients)
	check(c.ShutdownTimeout > 0, "shutdown timeout %s: want more than 0", c.ShutdownTimeout)
	check(c.DBTimeout > 0, "db timeout %s: want more than 0", c.DBTimeout)
	check(c.IdempotencyTTL > 0, "idempotency ttl %s: want more than 0", c.IdempotencyTTL)
	check(c.UpstreamTimeout > 0, "upstream timeout %s: want more than 0", c.UpstreamTimeout)
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
