package oracle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/outbox/eventmeta"
)

// brokerMessage is one message read back from the broker: its event id
// and type properties, its key and payload, and whether it was replayed.
type brokerMessage struct {
	eventID, typ, key string
	payload           []byte
	replayed          bool
}

// readBroker reads every topic from its earliest message to its last, with
// a Reader (no subscription is left behind), and returns the messages in
// topic order.
func readBroker(ctx context.Context, url string, topics []string, log *slog.Logger) (map[string][]brokerMessage, error) {
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: pulsarslog.New(log), OperationTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("creating the Pulsar client: %w", err)
	}
	defer c.Close()
	out := map[string][]brokerMessage{}
	for _, topic := range topics {
		msgs, err := readTopic(ctx, c, topic)
		if err != nil {
			return nil, err
		}
		out[topic] = msgs
	}
	return out, nil
}

func readTopic(ctx context.Context, c pulsar.Client, topic string) ([]brokerMessage, error) {
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	defer r.Close()
	var msgs []brokerMessage
	for r.HasNext() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading %s after %d messages: %w", topic, len(msgs), err)
		}
		p := m.Properties()
		_, replayed := p[eventmeta.ReplayedAt]
		msgs = append(msgs, brokerMessage{eventID: p[eventmeta.EventID], typ: p[eventmeta.Type], key: m.Key(), payload: m.Payload(), replayed: replayed})
	}
	return msgs, nil
}
