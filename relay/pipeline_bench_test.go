package relay

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/broker/brokertest"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/relay/pgsource"
	"github.com/alpes/alpes/relay/pulsarsend"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Micro-benchmarks of the relay's per-row work without Postgres: building a
// row's Pulsar message, and the whole publishing side of a session (row →
// producer send → broker receipt → tracker confirm) against the test's
// broker (brokertest: embedded in this process by default). docs/profiles.md records the figures.
//
//	go test ./relay/ -run '^$' -bench 'Encode|PublishPipeline' -count 6

// benchRow is an outbox row as the BFF writes it: a PlaceOrder command of
// one line, keyed by its order id, with a traceparent header.
func benchRow(tb testing.TB) *pgsource.Row {
	tb.Helper()
	payload, err := proto.Marshal(&ordersv1.PlaceOrder{
		OrderId: "01935e1a-2b3c-7d4e-8f10-213243546576", CustomerId: "c-1042", Address: "1 Main St, Springfield",
		RequestedAt: timestamppb.New(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)),
		Lines:       []*ordersv1.OrderLine{{Sku: "SKU-0007", Quantity: 2}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &pgsource.Row{
		EventID: "01935e1a-2b3c-7d4e-8f10-213243546577", Topic: "persistent://alpes/orders/commands.v1",
		AggregateID: "01935e1a-2b3c-7d4e-8f10-213243546576", Type: "alpes.orders.v1.PlaceOrder",
		SchemaVersion: 1, Payload: payload,
		Headers:   map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		CreatedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	}
}

// benchSource is a source runner with the shipped defaults and no
// connection, enough for a pipeline.
func benchSource(tb testing.TB, validate bool) *sourceRunner {
	tb.Helper()
	cfg := SourceConfig{Name: "bench", DSN: "host=unused"} // never dialled
	if validate {
		cfg.ValidatePayload = eventcatalog.ValidatePayload // as cmd/alpes and the devstack run it
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	return &sourceRunner{cfg: cfg, relay: &Config{Logger: log}, log: log, stats: newSourceStats()}
}

// BenchmarkEncode builds the Pulsar message of one single-row transaction:
// the Begin's commit properties formatted once, the row checked (topic,
// size, and with validate=true its protobuf payload, as shipped), its
// sequence id computed and its message built (properties, key, payload).
func BenchmarkEncode(b *testing.B) {
	for _, validate := range []bool{false, true} {
		name := "validate=false"
		if validate {
			name = "validate=true"
		}
		b.Run(name, func(b *testing.B) {
			p := &pipeline{source: benchSource(b, validate)}
			row := benchRow(b)
			begin := &pgsource.Begin{CommitLSN: 0x16B3748, CommitTime: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
			b.SetBytes(int64(len(row.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				p.openTx(begin)
				topic, _, msg, _, err := p.encode(row)
				if err != nil || topic != row.Topic || len(msg.Properties) != 7 {
					b.Fatalf("encoded %s %+v: %v", topic, msg, err)
				}
			}
		})
	}
}

// benchLSN keeps commit LSNs, and so sequence ids, growing across the runs
// of BenchmarkPublishPipeline, which share a producer name per broker.
var benchLSN atomic.Uint64

// BenchmarkPublishPipeline runs one session's publishing side as the relay
// does, without Postgres: b.N single-row transactions (Begin, Row, Commit)
// handed to the pipeline in batches of up to pgsource.MaxBatchChanges, the
// rows (all of one aggregate, so of one lane) sent in the producer's batches
// to the embedded broker, until the tracker confirms the last transaction's
// end. One op is one transaction;
// the CPU includes the broker's, which runs in this process.
func BenchmarkPublishPipeline(b *testing.B) {
	broker := brokertest.Start(b)
	client, err := pulsarsend.NewClient(pulsarsend.Options{URL: broker.ServiceURL})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()

	src := benchSource(b, true)
	start := pgsource.LSN(benchLSN.Add(uint64(b.N+1) * 0x100))
	tr := newTracker(start)
	// A WAL flush position past any id: a benchmark's stream is made up.
	identity := pgsource.Identity{SystemID: "bench", Timeline: 1, Database: "bench", WALFlush: ^pgsource.LSN(0)}
	pub := newPublisher(client, src.cfg.Name, identity, src.cfg.MaxInFlight, src.cfg.MaxMessageBytes, src.stats)
	defer pub.close()
	p := &pipeline{source: src, pub: pub, tracker: tr}

	// The stream's batches, built before the clock starts. The topic is the
	// run's own: a shared broker remembers other runs' sequence ids.
	row := benchRow(b)
	row.Topic = broker.Topic(b, "commands.v1")
	var batches [][]pgsource.Change
	var batch []pgsource.Change
	lsn := start
	for range b.N {
		lsn += 0x100
		now := time.Now()
		batch = append(batch, &pgsource.Begin{CommitLSN: lsn, CommitTime: now},
			row, &pgsource.Commit{CommitLSN: lsn, EndLSN: lsn + 0x30, CommitTime: now})
		if len(batch)+3 > pgsource.MaxBatchChanges {
			batches, batch = append(batches, batch), nil
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	end := lsn + 0x30
	// Create the producer before the clock starts: a session does it once.
	if _, err := pub.producer(context.Background(), row.Topic, laneOf(row.AggregateID), 0); err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan []pgsource.Change, 4)
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, changes) }()

	b.SetBytes(int64(len(row.Payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for _, batch := range batches {
		select {
		case changes <- batch:
		case err := <-done:
			b.Fatalf("pipeline stopped: %v", err)
		}
	}
	for tr.Confirmed() < end {
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped: %v", err)
		case <-time.After(50 * time.Microsecond): // polling the tracker, as the status updates do
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
	if got := src.stats.published.Load(); got != int64(b.N) {
		b.Fatalf("published %d, want %d (duplicates %d)", got, b.N, src.stats.duplicates.Load())
	}
}
