package relay_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay"
)

// refuseBad is a ValidatePayload that refuses payloads starting with "bad".
func refuseBad(_ string, payload []byte) error {
	if bytes.HasPrefix(payload, []byte("bad")) {
		return errors.New("refused by the test's validation")
	}
	return nil
}

// insertTx inserts one outbox row per payload for topic, all in one
// transaction, and returns their event ids in order.
func insertTx(ctx context.Context, t *testing.T, db *pgtest.DB, topic string, headers string, payloads ...[]byte) []string {
	t.Helper()
	tx, err := db.PoolAs(t, migrations.ServiceRole("orders")).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var ids []string
	for _, p := range payloads {
		id := uuid.NewString()
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload, headers) VALUES ($1, $2, 'order-1', 'alpes.test.v1.Probe', $3, $4)`,
			id, topic, p, headers); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestChangedQuarantineDecisionShiftsNoSequenceID: one transaction of five
// rows for one topic is streamed by a relay, which never confirms it, and
// again by the next relay, whose quarantine decision differs (a relay
// upgrade changed validation). A row's sequence id must not depend on the
// decision, or the re-streamed transaction maps a row to an id another row
// already used on the topic: one event dropped as a duplicate, another
// published twice.
//
// Contract: every row is on its topic at most once and in quarantine at most
// once, and at least in one of them. Each producer's ids only grow, so the
// decision of the relay that sent a transaction completely stands: a row it
// quarantined is not published by the next relay (its id lies below the
// transaction's later rows on the topic), and a row it published that the
// next relay refuses lands in quarantine as well (accepted: a quarantined
// copy of a published event, which an operator's re-publish would give to
// consumers' inboxes, where the event id absorbs it).
func TestChangedQuarantineDecisionShiftsNoSequenceID(t *testing.T) {
	cases := []struct {
		name          string
		first, second func(string, []byte) error
		onTopic       []int // indexes of the transaction's rows that end on the topic
	}{
		{"quarantined-then-accepted", refuseBad, nil, []int{0, 2, 4}},
		{"accepted-then-quarantined", nil, refuseBad, []int{0, 1, 2, 3, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, broker, rec := ordersToBroker(t)
			quarantine := consume(t, broker.ServiceURL, broker.quarantine)

			src := broker.source(db)
			src.StatusInterval = 1 << 40 // never confirms within the test
			src.ValidatePayload = c.first
			first := startStreamingRelay(t, broker, src)
			ids := insertTx(ctx, t, db, broker.topic, "{}",
				[]byte("a"), []byte("bad b"), []byte("c"), []byte("bad d"), []byte("e"))
			waitFor(t, "the first relay's 5 receipts", func() bool {
				l := lagOf(t, first, "orders")
				return l.MessagesPublished == 5 && l.InFlight == 0
			})
			if err := first.stop(t); err != nil {
				t.Fatalf("first relay: %v", err)
			}

			src = broker.source(db)
			src.ValidatePayload = c.second
			second := startStreamingRelay(t, broker, src)
			later := insertTx(ctx, t, db, broker.topic, "{}", []byte("f"))
			waitFor(t, "the second relay's 6 receipts", func() bool {
				l := lagOf(t, second, "orders")
				return l.MessagesPublished+l.DuplicatesDropped >= 6 && l.InFlight == 0
			})
			// The later row follows everything on the topic; the
			// quarantine's two rows are there once it has them.
			waitFor(t, "the later row", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return rec.byID[later[0]] > 0
			})
			waitFor(t, "2 quarantined rows", func() bool { distinct, _ := quarantine.count(); return distinct >= 2 })
			time.Sleep(200 * time.Millisecond) // let any extra copy arrive

			var onTopic []string
			for _, i := range c.onTopic {
				onTopic = append(onTopic, ids[i])
			}
			rec.assertExactlyOnce(t, append(onTopic, later...))
			quarantine.assertExactlyOnce(t, []string{ids[1], ids[3]})
		})
	}
}

// TestRowWhoseMetadataOverflowsTheMessageIsQuarantined: a row whose payload
// alone fits the broker's message size, but not with the headers the relay
// sends as properties, is quarantined; the stream goes on.
func TestRowWhoseMetadataOverflowsTheMessageIsQuarantined(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	quarantine := consume(t, broker.ServiceURL, broker.quarantine)
	r := startStreamingRelay(t, broker, broker.source(db))

	const maxMessage = 5 << 20 // the broker's default maxMessageSize
	payload := bytes.Repeat([]byte("p"), maxMessage-64<<10)
	headers := `{"x-padding": "` + strings.Repeat("h", 100<<10) + `"}`
	big := insertTx(ctx, t, db, broker.topic, headers, payload)
	good := insertTx(ctx, t, db, broker.topic, "{}", []byte("fits"))

	pgtest.WaitFor(t, 30*time.Second, "the row after the oversized one", func() bool { _, n := rec.count(); return n >= 1 })
	waitFor(t, "the oversized row in quarantine", func() bool { _, n := quarantine.count(); return n >= 1 })
	rec.assertExactlyOnce(t, good)
	quarantine.assertExactlyOnce(t, big)
	quarantine.mu.Lock()
	if reason := quarantine.msgs[0].Properties()[eventmeta.QuarantineReason]; !strings.Contains(reason, "exceeds") {
		t.Errorf("quarantine reason %q does not say the message is too large", reason)
	}
	quarantine.mu.Unlock()
	if l := lagOf(t, r, "orders"); l.State != relay.StateStreaming || l.Quarantined != 1 {
		t.Errorf("lag after the oversized row: %+v", l)
	}
}
