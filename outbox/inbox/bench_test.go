package inbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// BenchmarkApply measures how fast one instance drains a backlog of
// OrderPlaced events into the database, one effect row each, by batch size.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			e := newEnv(b)
			evs := sequence(50, (b.N+49)/50)
			publishAsync(b, e, evs)
			cfg := e.config(effectRegistry())
			cfg.BatchSize = size

			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			c := e.start(cfg)
			e.waitFor("the backlog applied", func() bool { return c.Stats().Applied == int64(len(evs)) })
			b.StopTimer()
			b.ReportMetric(float64(len(evs))/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// publishAsync publishes evs without waiting for each receipt.
func publishAsync(b *testing.B, e *env, evs []event) {
	b.Helper()
	pub := e.publisher(e.ordersTopic)
	for _, ev := range evs {
		pub.p.SendAsync(context.Background(), &pulsar.ProducerMessage{
			Key: ev.key, Payload: ev.payload, Properties: pub.properties(ev),
		}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := pub.p.Flush(); err != nil {
		b.Fatal(err)
	}
}
