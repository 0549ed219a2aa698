package inbox

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotSubscribed is Ready's answer while Run has not subscribed, or has
// returned.
var ErrNotSubscribed = errors.New("the consumer is not subscribed")

// Ready reports whether the consumer can do its work now: nil when Run
// holds its subscription, the database answers (a transaction begun and
// rolled back) and the broker answers (a lookup of the first topic's
// partitions through the consumer's client), each within ctx; else an
// error saying which failed. A broker lookup that outlives ctx finishes
// in the background, bounded by the client's operation timeout.
func (c *Consumer) Ready(ctx context.Context) error {
	if !c.subscribed.Load() {
		return ErrNotSubscribed
	}
	tx, err := c.cfg.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("the database does not answer: %w", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		return fmt.Errorf("the database does not answer: %w", err)
	}
	looked := make(chan error, 1)
	go func() {
		_, err := c.cfg.Client.TopicPartitions(c.cfg.Topics[0])
		looked <- err
	}()
	select {
	case err := <-looked:
		if err != nil {
			return fmt.Errorf("the broker does not answer: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the broker does not answer: %w", ctx.Err())
	}
}
