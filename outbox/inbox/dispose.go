package inbox

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/apache/pulsar-client-go/pulsar"
)

// dispose carries out the disposition of every message of a batch, in
// order, and acknowledges each once it is committed: the batch is applied
// in one transaction when all handlers succeed, else in runs around each
// failing message, which is retried alone and finally parked or
// dead-lettered. It returns nil when every message is disposed of and
// acknowledged, ctx's error when ctx ended first, or an error from a test
// hook.
func (c *Consumer) dispose(ctx context.Context, batch []*delivery) error {
	pending := batch
	for len(pending) > 0 {
		if pending[0].disp == dispNoEventID {
			if err := c.deadLetter(ctx, pending[0], pending[0].reason); err != nil {
				return err
			}
			pending = pending[1:]
			continue
		}
		end := 1
		for end < len(pending) && pending[end].disp != dispNoEventID {
			end++
		}
		n, failure, err := c.applyRun(ctx, pending[:end])
		if err != nil {
			return err
		}
		pending = pending[n:]
		if failure != nil {
			if err := c.isolate(ctx, pending[0], failure); err != nil {
				return err
			}
			pending = pending[1:]
		}
	}
	return nil
}

// applyRun applies run in one transaction, retrying database errors with
// backoff until it commits. When a handler fails, it commits the messages
// before the failing one instead, and returns how many it committed and the
// handler's error; the failing message is run[committed]. Committed messages
// are acknowledged. err is ctx's error or a test hook's.
func (c *Consumer) applyRun(ctx context.Context, run []*delivery) (committed int, failure, err error) {
	for dbAttempt := 1; ; {
		out, err := c.applyTx(ctx, run)
		var herr *handlerError
		switch {
		case err == nil:
			c.stats.add(out)
			if c.afterCommit != nil {
				if err := c.afterCommit(); err != nil {
					return 0, nil, err
				}
			}
			c.ack(run)
			return len(run), failure, nil
		case ctx.Err() != nil:
			return 0, nil, ctx.Err()
		case errors.As(err, &herr):
			c.log.Debug("handler failed", "event_id", run[herr.at].msg.EventID, "type", run[herr.at].msg.Type, "err", herr.err)
			failure = herr.err
			if herr.at == 0 {
				return 0, failure, nil
			}
			run = run[:herr.at] // commit what precedes it, on its own
		default:
			c.stats.dbRetries.Add(1)
			wait := c.cfg.backoff(dbAttempt)
			c.log.Warn("applying a batch; retrying", "messages", len(run), "attempt", dbAttempt, "retry_in", wait, "err", err)
			if !sleep(ctx, wait) {
				return 0, nil, ctx.Err()
			}
			dbAttempt++
		}
	}
}

// isolate retries d, whose handler failed with firstErr, on its own, up to
// MaxAttempts attempts in all, and parks or dead-letters it when it cannot
// be applied.
func (c *Consumer) isolate(ctx context.Context, d *delivery, firstErr error) error {
	failure := firstErr
	for attempt := 1; ; attempt++ {
		if errors.Is(failure, ErrPark) {
			d.disp, d.reason = dispPark, failure.Error()
			_, _, err := c.applyRun(ctx, []*delivery{d})
			return err
		}
		if attempt >= c.cfg.MaxAttempts {
			return c.deadLetter(ctx, d, fmt.Sprintf("handler failed %d times: %v", attempt, failure))
		}
		c.stats.retries.Add(1)
		wait := c.cfg.backoff(attempt)
		c.log.Warn("handler failed; retrying the message alone",
			"event_id", d.msg.EventID, "type", d.msg.Type, "attempt", attempt, "retry_in", wait, "err", failure)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		n, f, err := c.applyRun(ctx, []*delivery{d})
		if err != nil || n == 1 {
			return err
		}
		failure = f
	}
}

// deadLetter publishes d to its topic's dead-letter topic, then records it in
// the inbox and parked_messages, so a redelivery is a no-op, and
// acknowledges it. The publication comes first: a crash in between
// dead-letters it twice, never not at all.
func (c *Consumer) deadLetter(ctx context.Context, d *delivery, reason string) error {
	if err := c.publishDeadLetter(ctx, d, reason); err != nil {
		return err
	}
	c.log.Error("message dead-lettered", "event_id", d.msg.EventID, "type", d.msg.Type,
		"topic", d.msg.Topic, "dlq", DeadLetterTopic(d.msg.Topic, c.cfg.Subscription), "reason", reason)
	if d.disp == dispNoEventID {
		// Without an event id there is no inbox row to write.
		if c.afterCommit != nil {
			if err := c.afterCommit(); err != nil {
				return err
			}
		}
		c.stats.deadLettered.Add(1)
		c.ack([]*delivery{d})
		return nil
	}
	d.disp, d.reason = dispDeadLettered, "dead-lettered: "+reason
	_, _, err := c.applyRun(ctx, []*delivery{d})
	return err
}

// DLQReason is the property a dead-lettered message carries beside its
// original ones: why it could not be applied.
const DLQReason = "alpes-dlq-reason"

// publishDeadLetter sends d to <topic>-<subscription>-DLQ with its key,
// payload, event time and properties, plus DLQReason, and waits for the
// broker's receipt. It retries with backoff until it succeeds or ctx ends:
// the message cannot be acknowledged before it is safe elsewhere.
func (c *Consumer) publishDeadLetter(ctx context.Context, d *delivery, reason string) error {
	raw := d.msg.Raw
	props := maps.Clone(raw.Properties())
	if props == nil {
		props = map[string]string{}
	}
	props[DLQReason] = reason
	msg := &pulsar.ProducerMessage{
		Key:        raw.Key(),
		Payload:    raw.Payload(),
		Properties: props,
		EventTime:  raw.EventTime(),
	}
	for attempt := 1; ; attempt++ {
		p, err := c.deadLetterProducer(d.msg.Topic)
		if err == nil {
			_, err = p.Send(ctx, msg)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := c.cfg.backoff(attempt)
		c.log.Warn("publishing a dead letter; retrying", "event_id", d.msg.EventID, "attempt", attempt, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// deadLetterProducer returns the producer of topic's dead-letter topic,
// creating it on first use, after the topic's subscription (see
// keepDeadLetters).
func (c *Consumer) deadLetterProducer(topic string) (pulsar.Producer, error) {
	if p, ok := c.dlq[topic]; ok {
		return p, nil
	}
	dlq := DeadLetterTopic(topic, c.cfg.Subscription)
	if err := c.keepDeadLetters(dlq); err != nil {
		return nil, err
	}
	p, err := c.cfg.Client.CreateProducer(pulsar.ProducerOptions{
		Topic: dlq,
		// One entry per message: a dead letter is rare and must not wait
		// for a batch to fill.
		DisableBatching: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the producer of %s: %w", dlq, err)
	}
	c.dlq[topic] = p
	return p, nil
}

// keepDeadLetters makes sure the dead-letter topic has a durable
// subscription, named as the consumer's, before anything is written to it:
// a broker may delete messages no subscription holds (Pulsar without a
// retention policy does), and a dead letter must wait for an operator.
// pulsar-client-go asks the broker for that subscription only for its own
// dead-letter router (the producer's initial subscription), so the consumer
// subscribes once and leaves. The subscription starts at the earliest
// message, so one made late still holds what came before.
func (c *Consumer) keepDeadLetters(dlq string) error {
	keeper, err := c.cfg.Client.Subscribe(pulsar.ConsumerOptions{
		Topic:                       dlq,
		SubscriptionName:            c.cfg.Subscription,
		Type:                        pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		ReceiverQueueSize:           1,
	})
	if err != nil {
		return fmt.Errorf("subscribing to %s so that it keeps dead letters: %w", dlq, err)
	}
	keeper.Close()
	return nil
}
