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

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// embeddedRate measures a fresh embedded broker, started in this process
// with a data directory of its own and deduplication on (its default).
func embeddedRate(ctx context.Context, topic string, n int, batching bool) (rate BrokerRate, err error) {
	dir, err := os.MkdirTemp("", "alpes-bench-broker-")
	if err != nil {
		return rate, err
	}
	defer os.RemoveAll(dir)
	cfg := broker.DefaultConfig()
	cfg.ServiceAddr, cfg.AdminAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return rate, fmt.Errorf("starting the embedded broker: %w", err)
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	return measureRate(ctx, b.ServiceURL(), topic, n, batching, nil)
}

// pulsarRate measures the running Apache Pulsar s on a topic nobody has
// used, with the CPU its process spent over the produce and consume phases.
func pulsarRate(ctx context.Context, s *pulsarstandalone.Server, topic string, n int, batching bool) (BrokerRate, error) {
	return measureRate(ctx, s.ServiceURL, topic, n, batching, func() time.Duration {
		cpu, _ := pidUsage(s.PID)
		return cpu
	})
}

// measureRate subscribes one consumer to topic, then has one producer send
// n messages of brokerPayload bytes asynchronously (at most 10,000 pending)
// and waits for every receipt, then receives and acknowledges all n. The
// rates are messages per second of each phase. brokerCPU, when not nil,
// reads the broker process's CPU time; the rate then holds its CPU per
// message over both phases.
func measureRate(ctx context.Context, serviceURL, topic string, n int, batching bool, brokerCPU func() time.Duration) (rate BrokerRate, err error) {
	cl, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, Logger: pulsarslog.New(slog.New(slog.DiscardHandler))})
	if err != nil {
		return rate, fmt.Errorf("creating the client: %w", err)
	}
	defer cl.Close()
	cons, err := cl.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "bench"})
	if err != nil {
		return rate, fmt.Errorf("subscribing to %s: %w", topic, err)
	}
	defer cons.Close()
	prod, err := cl.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: !batching, MaxPendingMessages: 10000})
	if err != nil {
		return rate, fmt.Errorf("creating a producer on %s: %w", topic, err)
	}
	defer prod.Close()

	var cpuBefore time.Duration
	if brokerCPU != nil {
		cpuBefore = brokerCPU()
	}
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
		return rate, fmt.Errorf("producing: %w", sendErr)
	}
	start = time.Now()
	for range n {
		m, err := cons.Receive(ctx)
		if err != nil {
			return rate, fmt.Errorf("consuming: %w", err)
		}
		cons.Ack(m)
	}
	consumed := time.Since(start)
	rate = BrokerRate{Produce: perSecond(int64(n), produced), Consume: perSecond(int64(n), consumed)}
	if brokerCPU != nil {
		rate.BrokerCPU = micros(brokerCPU()-cpuBefore) / float64(n)
	}
	return rate, nil
}
