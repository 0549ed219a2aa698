package oracle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/services/eventcatalog"
)

// RetainSubscription is the durable subscription that keeps the broker from
// deleting what the oracle will read back. Without a retention policy
// Pulsar deletes the messages that every subscription has acknowledged, a
// ledger at a time: in a run long enough for the broker to roll its ledgers
// (a broker restart rolls one) the oracle would read truncated topics and
// report as lost events that every consumer applied. A subscription that
// never acknowledges anything pins every message for the oracle's reader.
const RetainSubscription = "alpes-oracle-retain"

// Retain creates RetainSubscription at the earliest position on each of
// the tenant's topics, without consuming. Call it before anything
// publishes; it is idempotent, so calling it again after a broker restart
// that lost its subscriptions (an in-memory broker) is safe.
func Retain(ctx context.Context, brokerURL string, topics eventcatalog.Topics, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topics, err := topics.Resolve()
	if err != nil {
		return err
	}
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: brokerURL, Logger: pulsarslog.New(log), OperationTimeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("creating the Pulsar client: %w", err)
	}
	defer c.Close()
	for _, topic := range []string{topics.OrderCommands, topics.OrderEvents, topics.PaymentEvents, topics.CatalogEvents} {
		cons, err := c.Subscribe(pulsar.ConsumerOptions{
			Topic: topic, SubscriptionName: RetainSubscription, Type: pulsar.Shared,
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
			ReceiverQueueSize:           1, // it never receives: the subscription is what counts
		})
		if err != nil {
			return fmt.Errorf("retaining %s for the oracle: %w", topic, err)
		}
		cons.Close()
	}
	return nil
}
