package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/alpes/alpes/internal/tracing"
)

// Consumer applies the messages of its topics to the service's database
// exactly once. Create it with New, run it with Run; Stats is safe to call
// from any goroutine at any time.
type Consumer struct {
	cfg     Config
	log     *slog.Logger
	entries map[protoreflect.FullName]entry
	started atomic.Bool
	stats   counters
	// latencies are observed by every commit; RegisterMetrics exposes them.
	latencies latencies
	// subscribed is true while Run holds its subscription (Ready).
	subscribed atomic.Bool
	// tracer makes the consumer spans; nil when tracing is off.
	tracer trace.Tracer

	// consumer is the Pulsar subscription; set by Run.
	consumer pulsar.Consumer
	// dlq holds one dead-letter producer per source topic, created on first
	// use and closed when Run returns. Used only by Run's goroutine.
	dlq map[string]pulsar.Producer

	// Test hooks, set through export_test.go; nil in production.
	beforeCommit    func() error  // called just before a transaction commits
	afterCommit     func() error  // called after a commit, before the acks; an error ends Run unacknowledged
	afterSweepBatch func(n int64) // called after each sweep batch commits, with the rows it deleted
}

// New validates cfg and returns a Consumer that is ready to Run.
func New(cfg Config) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "inbox", "subscription", cfg.Subscription),
		entries:   cfg.Registry.snapshot(),
		dlq:       map[string]pulsar.Producer{},
		latencies: newLatencies(cfg.Subscription),
		tracer:    tracing.Tracer(cfg.TracerProvider),
	}
	if fp := cfg.Failpoints; fp != nil {
		c.beforeCommit = func() error { fp.Hit("inbox/before-commit"); return nil }
		c.afterCommit = func() error { fp.Hit("inbox/after-commit"); return nil }
	}
	return c, nil
}

// Run subscribes and applies messages until ctx ends, then closes the
// subscription and returns nil. Beside them it sweeps the inbox (see Sweep)
// from the start and every Sweep.Interval; the sweep stops with Run. Messages received but not yet committed stay
// unacknowledged, and the broker delivers them to another instance or the
// next run. It returns an error only when it cannot subscribe. Run may be
// called once per Consumer.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("inbox: Run called twice")
	}
	consumer, err := c.cfg.Client.Subscribe(pulsar.ConsumerOptions{
		Topics:           c.cfg.Topics,
		SubscriptionName: c.cfg.Subscription,
		Type:             pulsar.KeyShared,
		// Auto-split hash ranges, and never out of order: the broker holds
		// back keys moved to a joining instance until their earlier messages
		// are acknowledged (ADR 0006).
		KeySharedPolicy:             &pulsar.KeySharedPolicy{Mode: pulsar.KeySharedPolicyModeAutoSplit},
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		ReceiverQueueSize:           c.cfg.ReceiveQueue,
	})
	if err != nil {
		return fmt.Errorf("subscribing %s to %v: %w", c.cfg.Subscription, c.cfg.Topics, err)
	}
	c.consumer = consumer
	defer c.close()
	c.subscribed.Store(true)
	defer c.subscribed.Store(false)
	sweepCtx, stopSweep := context.WithCancel(ctx)
	var sweeping sync.WaitGroup
	sweeping.Go(func() { c.sweepLoop(sweepCtx) })
	defer sweeping.Wait()
	defer stopSweep()
	c.log.Info("consuming", "topics", c.cfg.Topics, "handled", len(c.entries))

	for {
		batch := c.nextBatch(ctx)
		if batch == nil {
			return nil
		}
		if err := c.dispose(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// close closes the subscription, which flushes the acknowledgements already
// given, and the dead-letter producers.
func (c *Consumer) close() {
	c.consumer.Close()
	var wg sync.WaitGroup
	for _, p := range c.dlq {
		wg.Go(p.Close)
	}
	wg.Wait()
}

// nextBatch waits for a message and gathers what else has arrived. When
// that is more than the one message, the stream is busy: it goes on taking
// messages while the next comes within BatchGap, for up to BatchWait in all
// (see Config.BatchWait). Waiting out the whole BatchWait whenever two
// messages were queued had added it to the latency of most messages at
// moderate rates, where a pair arrives and then nothing for a while. It
// returns at most BatchSize messages, and nil once ctx has ended.
func (c *Consumer) nextBatch(ctx context.Context) []*delivery {
	in := c.consumer.Chan()
	var first pulsar.ConsumerMessage
	select {
	case <-ctx.Done():
		return nil
	case first = <-in:
	}
	batch := make([]*delivery, 0, c.cfg.BatchSize)
	batch = append(batch, classify(first.Message, c.entries))
drain:
	for len(batch) < c.cfg.BatchSize {
		select {
		case m := <-in:
			batch = append(batch, classify(m.Message, c.entries))
		default:
			break drain
		}
	}
	if len(batch) == 1 || len(batch) == c.cfg.BatchSize || c.cfg.BatchWait < 0 {
		return batch
	}
	wait := time.NewTimer(c.cfg.BatchWait)
	defer wait.Stop()
	gap := time.NewTimer(c.cfg.BatchGap)
	defer gap.Stop()
	for len(batch) < c.cfg.BatchSize {
		select {
		case <-ctx.Done():
			return nil
		case <-wait.C:
			return batch
		case <-gap.C:
			return batch
		case m := <-in:
			batch = append(batch, classify(m.Message, c.entries))
			gap.Reset(c.cfg.BatchGap)
		}
	}
	return batch
}

// ack acknowledges committed deliveries. A lost acknowledgement costs only a
// redelivery, which the inbox absorbs.
func (c *Consumer) ack(ds []*delivery) {
	for _, d := range ds {
		if err := c.consumer.Ack(d.msg.Raw); err != nil {
			c.log.Warn("acknowledging", "event_id", d.msg.EventID, "err", err)
		}
	}
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stats counts what a Consumer has done since it was created. Every count
// is of committed work, except the retries.
type Stats struct {
	// Applied is how many messages a handler applied.
	Applied int64
	// Skipped is how many messages of a skipped type were recorded.
	Skipped int64
	// Duplicates is how many messages were already in the inbox.
	Duplicates int64
	// Parked is how many messages went to parked_messages.
	Parked int64
	// DeadLettered is how many messages went to a dead-letter topic.
	DeadLettered int64
	// Retries is how many times a message was retried after its handler failed.
	Retries int64
	// DBRetries is how many times a run of messages was retried after a
	// transient database error (a lost connection, a fail-over, a statement
	// cancelled, an I/O error: see the package documentation), whether the
	// framework's statement or a handler's met it. These retries have no
	// limit; a count that keeps rising while Applied stands still is a
	// database fault to fix.
	DBRetries int64
	// Swept is how many inbox rows the sweep deleted (see Sweep).
	Swept int64
	// SweepFailures is how many sweeps failed; each is tried again at the
	// next interval.
	SweepFailures int64
	// LastSweepAt is when the last successful sweep finished, zero before
	// the first: an age well beyond Sweep.Interval means the sweep is
	// failing or disabled, and the inbox is growing.
	LastSweepAt time.Time
	// LastSweepDuration is how long the last successful sweep took.
	LastSweepDuration time.Duration
}

// counters are the live counts behind Stats.
type counters struct {
	applied, skipped, duplicates, parked, deadLettered, retries, dbRetries atomic.Int64
	swept, sweepFailures                                                   atomic.Int64
	lastSweep                                                              atomic.Pointer[sweepRecord]
}

func (c *counters) add(o outcome) {
	c.applied.Add(int64(o.applied))
	c.skipped.Add(int64(o.skipped))
	c.duplicates.Add(int64(o.duplicates))
	c.parked.Add(int64(o.parked))
	c.deadLettered.Add(int64(o.deadLettered))
}

// Stats returns the consumer's counts so far. Safe for concurrent use; the
// counts are read one by one, not as one snapshot.
func (c *Consumer) Stats() Stats {
	s := &c.stats
	st := Stats{
		Applied:       s.applied.Load(),
		Skipped:       s.skipped.Load(),
		Duplicates:    s.duplicates.Load(),
		Parked:        s.parked.Load(),
		DeadLettered:  s.deadLettered.Load(),
		Retries:       s.retries.Load(),
		DBRetries:     s.dbRetries.Load(),
		Swept:         s.swept.Load(),
		SweepFailures: s.sweepFailures.Load(),
	}
	if r := s.lastSweep.Load(); r != nil {
		st.LastSweepAt, st.LastSweepDuration = r.at, r.took
	}
	return st
}
