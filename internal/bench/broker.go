package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/internal/eventcatalog"
	"github.com/alpes/alpes/internal/pulsarbroker"
	"github.com/alpes/alpes/internal/pulsarslog"
)

// BrokerThroughput is the embedded broker's own rate, in this process: one
// producer of the real pulsar-client-go sends 1 KiB messages asynchronously,
// then one consumer receives and acknowledges them all. Durable (a data
// directory), deduplication on, as `alpes broker --data` runs.
type BrokerThroughput struct {
	Messages     int                     `json:"messages"`
	PayloadBytes int                     `json:"payload_bytes"`
	Cases        map[string]BrokerCase   `json:"cases"` // "batching" and "unbatched"
	Runs         []map[string]BrokerRate `json:"runs"`
}

// BrokerCase summarises one producer setting over the runs, messages/s.
type BrokerCase struct {
	Produce Spread `json:"produce_msg_per_s"`
	Consume Spread `json:"consume_msg_per_s"`
}

// BrokerRate is one measurement.
type BrokerRate struct {
	Produce float64 `json:"produce_msg_per_s"`
	Consume float64 `json:"consume_msg_per_s"`
}

const brokerPayload = 1024

func (r *runner) broker(ctx context.Context) (*BrokerThroughput, error) {
	bt := &BrokerThroughput{Messages: r.opts.Sizes.BrokerMessages, PayloadBytes: brokerPayload, Cases: map[string]BrokerCase{}}
	cases := []struct {
		name     string
		batching bool
	}{{"batching", true}, {"unbatched", false}}
	for run := range r.opts.Runs {
		rates := map[string]BrokerRate{}
		for _, c := range cases {
			rate, err := brokerRate(ctx, bt.Messages, c.batching)
			if err != nil {
				return bt, fmt.Errorf("%s: %w", c.name, err)
			}
			rates[c.name] = rate
			r.printf("   broker run %d, %s: produce %.0f msg/s, consume %.0f msg/s", run+1, c.name, rate.Produce, rate.Consume)
		}
		bt.Runs = append(bt.Runs, rates)
	}
	for _, c := range cases {
		bt.Cases[c.name] = BrokerCase{
			Produce: spreadBy(bt.Runs, func(m map[string]BrokerRate) float64 { return m[c.name].Produce }),
			Consume: spreadBy(bt.Runs, func(m map[string]BrokerRate) float64 { return m[c.name].Consume }),
		}
	}
	return bt, nil
}

func brokerRate(ctx context.Context, n int, batching bool) (rate BrokerRate, err error) {
	dir, err := os.MkdirTemp("", "alpes-bench-broker-")
	if err != nil {
		return rate, err
	}
	defer os.RemoveAll(dir)
	cfg := pulsarbroker.DefaultConfig()
	cfg.ServiceAddr, cfg.AdminAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	b, err := pulsarbroker.Start(ctx, cfg)
	if err != nil {
		return rate, err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	cl, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.ServiceURL(), Logger: pulsarslog.New(slog.New(slog.DiscardHandler))})
	if err != nil {
		return rate, err
	}
	defer cl.Close()
	topic := fmt.Sprintf("persistent://%s/bench/broker-%v.v1", eventcatalog.DefaultTenant, batching)
	cons, err := cl.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "bench"})
	if err != nil {
		return rate, err
	}
	defer cons.Close()
	prod, err := cl.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: !batching, MaxPendingMessages: 10000})
	if err != nil {
		return rate, err
	}
	defer prod.Close()

	payload := make([]byte, brokerPayload)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sendErr error
	start := time.Now()
	for range n {
		wg.Add(1)
		prod.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				mu.Lock()
				sendErr = errors.Join(sendErr, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	produced := time.Since(start)
	if sendErr != nil {
		return rate, sendErr
	}
	start = time.Now()
	for range n {
		m, err := cons.Receive(ctx)
		if err != nil {
			return rate, err
		}
		cons.Ack(m)
	}
	consumed := time.Since(start)
	return BrokerRate{Produce: perSecond(int64(n), produced), Consume: perSecond(int64(n), consumed)}, nil
}
