package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/relay/pgsource"
)

// ReplayConfig says which retained outbox rows to publish again.
type ReplayConfig struct {
	// Source is the source's name, as the relay knows it (producer names).
	Source string
	// DSN connects to the source database as a role that may read the outbox.
	DSN string
	// Since and Until bound the rows' created_at: Since ≤ created_at < Until.
	// A zero Until means now.
	Since, Until time.Time
	// Topic, when set, replays only that topic's rows.
	Topic string
	// Pulsar is the broker to publish to, as for Config; its AdminURL is
	// not used.
	Pulsar PulsarConfig
	// MaxMessageBytes is the broker's largest message, as for
	// SourceConfig; zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	Logger          *slog.Logger
}

// ReplayReport counts what Replay published, per topic, and names the rows
// it could not publish.
type ReplayReport struct {
	Topics  map[string]int64 `json:"topics"`
	Total   int64            `json:"total"`
	Skipped []ReplaySkip     `json:"skipped,omitempty"`
}

// ReplaySkip is a row Replay could not publish; it stays in the outbox.
type ReplaySkip struct {
	EventID string `json:"event_id"`
	Topic   string `json:"topic"`
	Reason  string `json:"reason"`
}

// Replay publishes again the outbox rows of a time window, in created_at
// order (per aggregate the order of their commits), with their original
// event ids: consumers' inboxes drop what they have already applied. It
// publishes under producer names of its own, so the streaming relay's
// deduplication state is untouched, and returns once the broker has
// receipted every message.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayReport, error) {
	report := ReplayReport{Topics: map[string]int64{}}
	if cfg.Until.IsZero() {
		cfg.Until = time.Now()
	}
	if !cfg.Since.Before(cfg.Until) {
		return report, fmt.Errorf("empty window: since %s is not before until %s", cfg.Since.Format(time.RFC3339), cfg.Until.Format(time.RFC3339))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	pc, err := cfg.Pulsar.withDefaults()
	if err != nil {
		return report, err
	}
	conn, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		return report, fmt.Errorf("connecting to the source: %w", err)
	}
	defer conn.Close(context.Background())

	client, err := pulsar.NewClient(pc.clientOptions(cfg.Logger))
	if err != nil {
		return report, fmt.Errorf("creating the Pulsar client: %w", err)
	}
	defer client.Close()

	started := time.Now().UTC()
	stream := "replay-" + strconv.FormatInt(started.UnixMilli(), 10)
	producers := map[string]pulsar.Producer{}
	defer func() {
		for _, p := range producers {
			p.Close()
		}
	}()
	failed := make(chan error, 1)

	rows, err := conn.Query(ctx, schema.SelectOutboxWindow, cfg.Since, cfg.Until, cfg.Topic)
	if err != nil {
		return report, fmt.Errorf("reading the outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var row pgsource.Row
		var headers map[string]any
		if err := rows.Scan(&row.EventID, &row.Topic, &row.AggregateID, &row.Type, &row.SchemaVersion, &row.Payload, &headers, &row.CreatedAt); err != nil {
			return report, fmt.Errorf("reading an outbox row: %w", err)
		}
		row.Headers = pgsource.HeaderStrings(headers)
		msg := eventMessage(&row, "", formatTime(row.CreatedAt), row.CreatedAt)
		msg.Properties[eventmeta.ReplayedAt] = started.Format(time.RFC3339Nano)
		if reason := replayable(&row, msg, cfg.MaxMessageBytes, len(producerName(cfg.Source, stream, row.Topic, noLane, 0))); reason != "" {
			cfg.Logger.Warn("not replaying an outbox row", "event_id", row.EventID, "topic", row.Topic, "reason", reason)
			report.Skipped = append(report.Skipped, ReplaySkip{EventID: row.EventID, Topic: row.Topic, Reason: reason})
			continue
		}
		prod, ok := producers[row.Topic]
		if !ok {
			name := producerName(cfg.Source, stream, row.Topic, noLane, 0)
			// Unbatched: pulsar-client-go would place a batch by its first
			// message's key, not by the messages' lane (lanes.go).
			if prod, err = client.CreateProducer(pulsar.ProducerOptions{Topic: row.Topic, Name: name, DisableBatching: true}); err != nil {
				return report, fmt.Errorf("creating producer %s: %w", name, err)
			}
			producers[row.Topic] = prod
		}
		prod.SendAsync(ctx, msg, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		})
		report.Topics[row.Topic]++
		report.Total++
		select {
		case err := <-failed:
			return report, fmt.Errorf("publishing: %w", err)
		default:
		}
	}
	if err := rows.Err(); err != nil {
		return report, fmt.Errorf("reading the outbox: %w", err)
	}
	for topic, p := range producers {
		if err := p.FlushWithCtx(ctx); err != nil {
			return report, fmt.Errorf("flushing %s: %w", topic, err)
		}
	}
	select {
	case err := <-failed:
		return report, fmt.Errorf("publishing: %w", err)
	default:
	}
	cfg.Logger.Info("replay done", "source", cfg.Source, "messages", report.Total, "since", cfg.Since, "until", cfg.Until)
	return report, nil
}

// replayable returns why row's message msg cannot be replayed, or "": its
// topic is not a Pulsar topic, or the message would exceed the broker's
// largest (counted as the relay counts it, for a producer name of nameLen
// bytes).
func replayable(row *pgsource.Row, msg *pulsar.ProducerMessage, maxMessageBytes, nameLen int) string {
	if !validTopic(row.Topic) {
		return fmt.Sprintf("topic %q is not a fully qualified Pulsar topic", row.Topic)
	}
	if n := messageSize(msg, nameLen); n > maxMessageBytes {
		return fmt.Sprintf("message of up to %d bytes exceeds the broker's limit of %d", n, maxMessageBytes)
	}
	return ""
}
