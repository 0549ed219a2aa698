package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/alpes/alpes/internal/pulsaradmin"
)

// BrokerThroughput is the brokers' own rates, measured from this process:
// one producer of the real pulsar-client-go sends 1 KiB messages
// asynchronously, then one consumer receives and acknowledges them all.
// Two brokers, their measurements interleaved (the order alternates), with
// the same message count, payload and client settings:
//
//   - the embedded broker, started in this process for each measurement,
//     durable (a data directory), deduplication on, as `alpes broker --data`
//     runs;
//   - Apache Pulsar standalone, started by the launcher once for the
//     scenario (durable by nature, alpes's settings, deduplication on), a
//     fresh topic per measurement in a namespace with deduplication on.
type BrokerThroughput struct {
	Messages     int `json:"messages"`
	PayloadBytes int `json:"payload_bytes"`
	// Cases and Runs are the embedded broker's, by producer setting:
	// "batching" and "unbatched".
	Cases map[string]BrokerCase   `json:"cases"`
	Runs  []map[string]BrokerRate `json:"runs"`
	// Pulsar holds the same measurements on Apache Pulsar standalone; nil
	// when it could not run (the scenario's error says why).
	Pulsar *PulsarThroughput `json:"pulsar,omitempty"`
}

// PulsarThroughput is BrokerThroughput's measurements on Apache Pulsar
// standalone, whose process (a JVM) is measured on its own.
type PulsarThroughput struct {
	Version string                  `json:"version"`
	Cases   map[string]BrokerCase   `json:"cases"`
	Runs    []map[string]BrokerRate `json:"runs"`
	// StartupSeconds is from exec until it served (pulsarstandalone.Start).
	StartupSeconds float64 `json:"startup_s"`
	// PeakRSS is the JVM's peak resident set (VmHWM) over the scenario, MiB.
	PeakRSS float64 `json:"peak_rss_mib"`
}

// BrokerCase summarises one producer setting over the runs, messages/s.
type BrokerCase struct {
	Produce Spread `json:"produce_msg_per_s"`
	Consume Spread `json:"consume_msg_per_s"`
	// BrokerCPU is the broker process's CPU per message, produced and
	// consumed, µs; only for a broker in a process of its own (Pulsar): the
	// embedded broker shares this process with the client.
	BrokerCPU *Spread `json:"broker_cpu_us_per_msg,omitempty"`
}

// BrokerRate is one measurement.
type BrokerRate struct {
	Produce   float64 `json:"produce_msg_per_s"`
	Consume   float64 `json:"consume_msg_per_s"`
	BrokerCPU float64 `json:"broker_cpu_us_per_msg,omitempty"`
}

const brokerPayload = 1024

// brokerWarmUp is how many messages warm Apache Pulsar up before the
// broker scenario measures it.
const brokerWarmUp = 10_000

// brokerCases are the producer settings measured, in order.
var brokerCases = []struct {
	name     string
	batching bool
}{{"batching", true}, {"unbatched", false}}

// broker measures both brokers. When Apache Pulsar cannot be started it
// still measures the embedded broker and returns the reason as its error.
func (r *runner) broker(ctx context.Context) (_ *BrokerThroughput, err error) {
	n := r.opts.Sizes.BrokerMessages
	bt := &BrokerThroughput{Messages: n, PayloadBytes: brokerPayload, Cases: map[string]BrokerCase{}}
	var pulsarErr error
	srv, startup, err := r.startPulsar(ctx)
	if err != nil {
		pulsarErr = err
		r.printf("   %v; measuring the embedded broker only", err)
	} else {
		defer func() { err = errors.Join(err, srv.Stop()) }()
		if err := pulsaradmin.New(srv.AdminURL, "").EnsureNamespace(ctx, benchNamespace, true); err != nil {
			return bt, fmt.Errorf("creating the namespace on Apache Pulsar: %w", err)
		}
		bt.Pulsar = &PulsarThroughput{Version: srv.Version, Cases: map[string]BrokerCase{}, StartupSeconds: startup.Seconds()}
		// A JVM compiles its hot paths while it runs: a first load, not
		// measured, so that the measurements see it warm.
		warm := fmt.Sprintf("persistent://%s/broker-warm-up.v1", benchNamespace)
		if _, err := measureRate(ctx, srv.ServiceURL, warm, min(n, brokerWarmUp), false, nil); err != nil {
			return bt, fmt.Errorf("warming Apache Pulsar up: %w", err)
		}
	}
	for run := range r.opts.Runs {
		rates := map[string]map[string]BrokerRate{brokerEmbedded: {}, brokerPulsar: {}}
		for i, c := range brokerCases {
			brokers := []string{brokerEmbedded, brokerPulsar}
			if (run+i)%2 == 1 {
				slices.Reverse(brokers)
			}
			topic := fmt.Sprintf("persistent://%s/broker-%s-%d.v1", benchNamespace, c.name, run)
			for _, b := range brokers {
				var rate BrokerRate
				var err error
				switch {
				case b == brokerEmbedded:
					rate, err = embeddedRate(ctx, topic, n, c.batching)
				case srv != nil:
					rate, err = pulsarRate(ctx, srv, topic, n, c.batching)
				default:
					continue
				}
				if err != nil {
					return bt, fmt.Errorf("%s broker, %s: %w", b, c.name, err)
				}
				rates[b][c.name] = rate
				r.printf("   broker run %d, %s, %s: produce %.0f msg/s, consume %.0f msg/s", run+1, b, c.name, rate.Produce, rate.Consume)
			}
		}
		bt.Runs = append(bt.Runs, rates[brokerEmbedded])
		if bt.Pulsar != nil {
			bt.Pulsar.Runs = append(bt.Pulsar.Runs, rates[brokerPulsar])
		}
	}
	bt.Cases = brokerCasesOf(bt.Runs, false)
	if bt.Pulsar != nil {
		bt.Pulsar.Cases = brokerCasesOf(bt.Pulsar.Runs, true)
		_, rss := pidUsage(srv.PID)
		bt.Pulsar.PeakRSS = float64(rss) / (1 << 20)
	}
	return bt, pulsarErr
}

// brokerCasesOf summarises runs per producer setting, with the broker's CPU
// when it was measured.
func brokerCasesOf(runs []map[string]BrokerRate, withCPU bool) map[string]BrokerCase {
	cases := map[string]BrokerCase{}
	for _, c := range brokerCases {
		bc := BrokerCase{
			Produce: spreadBy(runs, func(m map[string]BrokerRate) float64 { return m[c.name].Produce }),
			Consume: spreadBy(runs, func(m map[string]BrokerRate) float64 { return m[c.name].Consume }),
		}
		if withCPU {
			cpu := spreadBy(runs, func(m map[string]BrokerRate) float64 { return m[c.name].BrokerCPU })
			bc.BrokerCPU = &cpu
		}
		cases[c.name] = bc
	}
	return cases
}
