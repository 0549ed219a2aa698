package relay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/relay/pgsource"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// TestABatchWaitsForItsProducersReceipt plays the pipeline's part by hand:
// publish, then flushIdle as when the stream has nothing more ready. A
// proxy holding every byte (a partition TCP has not noticed) keeps the
// first entry's receipt away, deterministically. While it is away, what
// comes for the same lane gathers into one batch; another lane's message
// goes at once; and the receipt's arrival signals ready, after which the
// gathered batch goes as one entry.
func TestABatchWaitsForItsProducersReceipt(t *testing.T) {
	ctx := context.Background()
	b := brokertest.Start(t)
	proxy := faultproxy.NewPulsar(t, strings.TrimPrefix(b.ServiceURL, "pulsar://"))
	client, err := pulsarsend.NewClient(pulsarsend.Options{URL: "pulsar://" + proxy.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	src := benchSource(t, false)
	identity := pgsource.Identity{SystemID: "test", Timeline: 1, Database: "test", WALFlush: ^pgsource.LSN(0)}
	pub := newPublisher(client, src.cfg.Name, identity, src.cfg.MaxInFlight, src.cfg.MaxMessageBytes, src.stats)
	defer pub.close()
	topic := b.Topic(t, "events.v1")

	const busy, other = "order-1", "01935e1a-2b3c-7d4e-8f10-213243546577"
	if laneOf(busy) == laneOf(other) {
		t.Fatal("the two aggregates share a lane")
	}
	// The topic's producers are made while the proxy passes bytes.
	if _, err := pub.producer(ctx, topic, laneOf(busy), 0); err != nil {
		t.Fatal(err)
	}
	receipts := make(chan error, 4)
	publish := func(i int, aggregate string) {
		t.Helper()
		row := benchRow(t)
		row.Topic, row.AggregateID = topic, aggregate
		seq, epoch, err := position{commitLSN: pgsource.LSN(0x1000 * (i + 1))}.sequenceID()
		if err != nil {
			t.Fatal(err)
		}
		msg := eventMessage(row, "0/0", formatTime(row.CreatedAt), row.CreatedAt)
		msg.SequenceID = &seq
		size := messageSize(msg, producerNameLen(src.cfg.Name, topic))
		if err := pub.publish(ctx, topic, laneOf(aggregate), epoch, msg, size, func(err error) { receipts <- err }); err != nil {
			t.Fatal(err)
		}
		if err := pub.flushIdle(); err != nil {
			t.Fatal(err)
		}
	}
	entries := func(want int64, when string) {
		t.Helper()
		if got := src.stats.entries.Load(); got != want {
			t.Fatalf("%s: %d entries sent, want %d", when, got, want)
		}
	}

	if err := proxy.SetMode(faultproxy.Blackhole); err != nil {
		t.Fatal(err)
	}
	publish(0, busy)
	entries(1, "the first message, its lane idle")
	publish(1, busy)
	publish(2, busy)
	entries(1, "two more for the lane while its entry awaits the receipt")
	publish(3, other)
	entries(2, "a message for another lane")

	if err := proxy.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pub.ready:
	case <-time.After(30 * time.Second):
		t.Fatal("no ready signal after the first entry's receipt")
	}
	if err := pub.flushIdle(); err != nil {
		t.Fatal(err)
	}
	entries(3, "after the receipt")
	for range 4 {
		select {
		case err := <-receipts:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a message was never receipted")
		}
	}

	// On the broker: the two gathered messages share an entry, the others
	// have one each.
	reader, err := brokertest.NewClient(t, b.ServiceURL).CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	// Entries in the order they were sent: the first message alone, the
	// other lane's message, then the gathered two.
	var got []string
	var last pulsar.MessageID
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for range 4 {
		m, err := reader.Next(rctx)
		if err != nil {
			t.Fatalf("reading the topic: %v", err)
		}
		id := m.ID()
		if last == nil || id.LedgerID() != last.LedgerID() || id.EntryID() != last.EntryID() {
			got = append(got, "|")
		}
		got = append(got, m.Key())
		last = id
	}
	want := []string{"|", busy, "|", other, "|", busy, busy}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("entries on the broker (| starts one):\n got %v\nwant %v", got, want)
	}
}
