package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/failpoint"
)

// Defaults of Config's tunables.
const (
	DefaultBatchSize    = 100
	DefaultBatchWait    = 5 * time.Millisecond
	DefaultBatchGap     = time.Millisecond
	DefaultMaxAttempts  = 5
	DefaultRetryBackoff = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultReceiveQueue = 1000
)

// DB holds the connections a Consumer applies messages on. A
// *pgxpool.Pool is one; it must be safe for concurrent use.
type DB interface {
	// Acquire lends a connection for one apply transaction.
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
	// Begin begins the sweep's transactions and the readiness check's.
	Begin(ctx context.Context) (pgx.Tx, error)
}

var _ DB = (*pgxpool.Pool)(nil)

// Config configures a Consumer. Zero numbers take the defaults documented on
// their fields; Client, DB, Subscription, Topics and Registry are required.
type Config struct {
	// Client is the Pulsar client the consumer subscribes and publishes
	// dead letters with. The caller owns it and closes it after Run returns.
	Client pulsar.Client
	// DB is the service's database, connected as the service's own role
	// (alpes_<service>), which may write inbox, apply_progress and
	// parked_messages.
	DB DB
	// Subscription names the Key_Shared subscription: the service's name,
	// e.g. "payments". Every instance of a service uses the same one. It also
	// names the dead-letter topics, <topic>-<Subscription>-DLQ.
	Subscription string
	// Topics are the fully qualified topics to consume, e.g.
	// persistent://alpes/orders/events.v1.
	Topics []string
	// Registry maps message types to handlers. New takes a snapshot of it:
	// registrations made afterwards do not reach this Consumer.
	Registry *Registry
	// Logger receives the consumer's logs. Default: discard.
	Logger *slog.Logger
	// TracerProvider receives a consumer span per message applied:
	// "process <topic>", a child of the trace context in the message's
	// properties (W3C traceparent), around its handler (or its parking),
	// and in the handler's context, so that what the handler appends to its
	// own outbox continues the trace. Nil or a no-op provider traces
	// nothing, and then no message's properties are read for it.
	TracerProvider trace.TracerProvider

	// BatchSize is the most messages applied in one transaction. Default 100.
	BatchSize int
	// BatchWait is how long a batch may wait for more messages. A batch first
	// takes what has already arrived. A lone message, as on a quiet stream,
	// is applied at once; when more than one was waiting the stream is busy,
	// and the batch goes on taking messages while they keep coming (see
	// BatchGap), for up to BatchWait in all, so that a busy stream commits
	// fewer, larger transactions. Negative never waits. Default 5ms.
	BatchWait time.Duration
	// BatchGap is how long a filling batch waits for its next message: when
	// none arrives within it, the stream has paused and the batch is applied
	// without waiting out the rest of BatchWait. Default 1ms.
	BatchGap time.Duration
	// MaxAttempts is how many times a message whose handler fails is tried
	// before it is dead-lettered, the first attempt included. Attempts that
	// meet a transient database error do not count: those are retried until
	// the database heals. Default 5.
	MaxAttempts int
	// RetryBackoff is the wait before the second attempt; it doubles on each
	// further attempt, and also paces retries after database errors.
	// Default 100ms.
	RetryBackoff time.Duration
	// MaxBackoff caps every wait between retries, and so paces the unbounded
	// retries after transient database errors. Default 10s.
	MaxBackoff time.Duration
	// ReceiveQueue is the Pulsar consumer's receiver queue size: how many
	// messages the broker may push ahead of the batches. Default 1000.
	ReceiveQueue int
	// Sweep configures the inbox sweep Run performs: how long event ids
	// are kept, and so for how long duplicates are recognised. Zero fields
	// take its defaults: a 7-day retention, swept every minute.
	Sweep Sweep

	// Failpoints, for fault tests, crash the process at "inbox/before-commit"
	// (a batch applied, its transaction not yet committed) or
	// "inbox/after-commit" (committed, not yet acknowledged). Nil in
	// production.
	Failpoints *failpoint.Set
}

// withDefaults returns c with zero tunables set to their defaults, or an
// error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&c.BatchSize, DefaultBatchSize)
	setDefault(&c.MaxAttempts, DefaultMaxAttempts)
	setDefault(&c.RetryBackoff, DefaultRetryBackoff)
	setDefault(&c.MaxBackoff, DefaultMaxBackoff)
	setDefault(&c.ReceiveQueue, DefaultReceiveQueue)

	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Client != nil, "no pulsar client")
	check(c.DB != nil, "no database")
	check(c.Registry != nil && c.Registry.len() > 0, "no registry, or nothing registered: every message would be parked")
	check(c.Subscription != "" && !strings.ContainsAny(c.Subscription, "/ "),
		"subscription %q: want a service name such as payments", c.Subscription)
	check(len(c.Topics) > 0, "no topics")
	seen := map[string]bool{}
	for _, t := range c.Topics {
		check(isQualifiedTopic(t), "topic %q: want persistent://<tenant>/<namespace>/<topic>", t)
		check(!seen[t], "topic %q listed twice", t)
		seen[t] = true
	}
	check(c.BatchSize > 0, "batch size %d: want at least 1", c.BatchSize)
	setDefault(&c.BatchWait, DefaultBatchWait)
	setDefault(&c.BatchGap, DefaultBatchGap)
	check(c.MaxAttempts > 0, "max attempts %d: want at least 1", c.MaxAttempts)
	check(c.RetryBackoff > 0, "retry backoff %s: want more than 0", c.RetryBackoff)
	check(c.MaxBackoff >= c.RetryBackoff, "max backoff %s: want at least the retry backoff %s", c.MaxBackoff, c.RetryBackoff)
	check(c.ReceiveQueue > 0, "receive queue %d: want at least 1", c.ReceiveQueue)
	sweep, sweepErrs := c.Sweep.withDefaults()
	c.Sweep = sweep
	errs = append(errs, sweepErrs...)
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// ErrInvalidConfig is returned by New for a Config it cannot run with.
var ErrInvalidConfig = errors.New("invalid inbox config")

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// isQualifiedTopic reports whether t is persistent://tenant/namespace/topic.
func isQualifiedTopic(t string) bool {
	rest, ok := strings.CutPrefix(t, "persistent://")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	return true
}

// backoff returns the wait before retry n (n ≥ 1): RetryBackoff doubled
// n-1 times, capped at MaxBackoff.
func (c Config) backoff(n int) time.Duration {
	d := c.RetryBackoff
	for i := 1; i < n && d < c.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff)
}

// DeadLetterTopic returns the dead-letter topic of topic for subscription:
// <topic>-<subscription>-DLQ, as Pulsar names it.
func DeadLetterTopic(topic, subscription string) string {
	return topic + "-" + subscription + "-DLQ"
}
