package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
)

// createPollTable creates the polling baseline's scratch database and its
// table: the outbox's columns plus a sequence to poll in order. The real
// schema is left alone.
func createPollTable(ctx context.Context, sys *system) error {
	if err := migrations.CreateDatabase(ctx, sys.Cluster.AdminDSN, pollDatabase); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, sys.Cluster.AdminDSN(pollDatabase))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE TABLE poll_outbox (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           uuid        NOT NULL,
    topic        text        NOT NULL,
    aggregate_id text        NOT NULL,
    type         text        NOT NULL,
    payload      bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
)`)
	if err != nil {
		return fmt.Errorf("creating the polling table: %w", err)
	}
	return nil
}

// pollRow is one row of the polling baseline's table.
type pollRow struct {
	Seq         int64             `db:"seq"`
	ID          string            `db:"id"`
	Topic       string            `db:"topic"`
	AggregateID string            `db:"aggregate_id"`
	Type        string            `db:"type"`
	Payload     []byte            `db:"payload"`
	Headers     map[string]string `db:"headers"`
}

// pollOutbox is the polling outbox relay that CDC replaces, written as such
// relays usually are: in a transaction, lock the oldest batch of rows
// (FOR UPDATE SKIP LOCKED, so several pollers could share a table), publish
// each row as a message with the same properties the relay sets, wait for
// every receipt, delete the batch and commit. It stops when a poll finds
// nothing and returns how many messages it published.
func pollOutbox(ctx context.Context, dsn, brokerURL string, batch int) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: brokerURL, Logger: pulsarslog.New(slog.New(slog.DiscardHandler))})
	if err != nil {
		return 0, err
	}
	defer client.Close()
	producers := map[string]pulsar.Producer{}
	defer func() {
		for _, p := range producers {
			p.Close()
		}
	}()
	producer := func(topic string) (pulsar.Producer, error) {
		if p, ok := producers[topic]; ok {
			return p, nil
		}
		// Unbatched: pulsar-client-go places a batch on a Key_Shared
		// subscription by its first message's key, so a poller that keeps
		// per-order order cannot batch with it. (The relay batches by
		// lane, with a producer of its own: ADR 0008.)
		p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true, MaxPendingMessages: batch})
		if err != nil {
			return nil, fmt.Errorf("creating a producer on %s: %w", topic, err)
		}
		producers[topic] = p
		return p, nil
	}

	var published int64
	for {
		n, err := pollOnce(ctx, conn, producer, batch)
		published += int64(n)
		if err != nil || n == 0 {
			return published, err
		}
	}
}

func pollOnce(ctx context.Context, conn *pgx.Conn, producer func(string) (pulsar.Producer, error), batch int) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT seq, id::text AS id, topic, aggregate_id, type, payload, headers
			FROM poll_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, batch)
		if err != nil {
			return err
		}
		batchRows, err := pgx.CollectRows(rows, pgx.RowToStructByName[pollRow])
		if err != nil {
			return err
		}
		if len(batchRows) == 0 {
			return nil
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var sendErr error
		seqs := make([]int64, len(batchRows))
		for i, row := range batchRows {
			seqs[i] = row.Seq
			p, err := producer(row.Topic)
			if err != nil {
				return err
			}
			props := make(map[string]string, len(row.Headers)+3)
			for k, v := range row.Headers {
				props[k] = v
			}
			props[eventmeta.EventID], props[eventmeta.Type], props[eventmeta.AggregateID] = row.ID, row.Type, row.AggregateID
			wg.Add(1)
			p.SendAsync(ctx, &pulsar.ProducerMessage{Key: row.AggregateID, Payload: row.Payload, Properties: props},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						mu.Lock()
						sendErr = errors.Join(sendErr, err)
						mu.Unlock()
					}
					wg.Done()
				})
		}
		wg.Wait()
		if sendErr != nil {
			return fmt.Errorf("publishing: %w", sendErr)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM poll_outbox WHERE seq = ANY($1)`, seqs); err != nil {
			return err
		}
		n = len(batchRows)
		return nil
	})
	return n, err
}
