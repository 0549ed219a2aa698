package broker_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
)

// BenchmarkThroughput measures end-to-end throughput through the broker
// with the real client: b.N messages of 1 KiB produced asynchronously,
// then consumed. It reports messages and megabytes per second for each
// phase; the numbers belong in the benchmark report, not in assertions.
//
//	go test -run '^$' -bench Throughput -benchtime 20000x ./broker/
func BenchmarkThroughput(b *testing.B) {
	const size = 1024
	for _, durable := range []bool{false, true} {
		for _, batching := range []bool{true, false} {
			b.Run(fmt.Sprintf("durable=%v/batching=%v", durable, batching), func(b *testing.B) {
				cfg := testConfig()
				if durable {
					cfg.DataDir = b.TempDir()
				}
				e := startBench(b, cfg)
				c, err := pulsar.NewClient(pulsar.ClientOptions{URL: e.serviceURL, Logger: quietLogger})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				tp := fmt.Sprintf("persistent://public/default/bench-%d-%v-%v", b.N, durable, batching)
				cs, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
				if err != nil {
					b.Fatal(err)
				}
				defer cs.Close()
				p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, DisableBatching: !batching,
					MaxPendingMessages: 10000})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				payload := make([]byte, size)
				ctx := b.Context()

				b.ResetTimer()
				var wg sync.WaitGroup
				wg.Add(b.N)
				for range b.N {
					p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload},
						func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
							if err != nil {
								b.Error(err)
							}
							wg.Done()
						})
				}
				wg.Wait()
				produced := b.Elapsed()
				for range b.N {
					m, err := cs.Receive(ctx)
					if err != nil {
						b.Fatal(err)
					}
					cs.Ack(m)
				}
				consumed := b.Elapsed() - produced
				b.StopTimer()
				mb := float64(b.N) * size / 1e6
				b.ReportMetric(float64(b.N)/produced.Seconds(), "produce-msg/s")
				b.ReportMetric(mb/produced.Seconds(), "produce-MB/s")
				b.ReportMetric(float64(b.N)/consumed.Seconds(), "consume-msg/s")
				b.ReportMetric(mb/consumed.Seconds(), "consume-MB/s")
			})
		}
	}
}
