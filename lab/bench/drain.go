package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/alpes/alpes/internal/pulsaradmin"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Drain is figure B, the polling baseline, and figure E during B: one
// backlog of single-row outbox transactions drained from the same WAL
// position by the relay (its own process, publishing to the broker's
// process), by pg_recvlogical in text and in binary mode, and, from a copy of
// the backlog in a scratch database, by a polling outbox relay.
//
// It is measured on two stacks, both up for the whole scenario, whose runs
// interleave (the order alternates from run to run): one whose broker is
// the embedded broker (`alpes broker --data`), whose figures are Drain's
// own, and one whose broker is Apache Pulsar standalone, in Pulsar. Each
// run writes the same backlog (same rows, same count) into its stack's
// Postgres; each stack's ratios are against its own pg_recvlogical drains.
type Drain struct {
	Backlog int `json:"backlog_tx"`
	DrainFigures
	// Pulsar is the same on Apache Pulsar standalone; nil when it could not
	// run (the scenario's error says why).
	Pulsar *DrainFigures `json:"pulsar,omitempty"`
}

// DrainFigures are one stack's drains, summarised over the runs.
type DrainFigures struct {
	// Broker is the stack's broker: "embedded" or "pulsar".
	Broker string `json:"broker"`
	// Rates in transactions per second.
	Relay      Spread `json:"relay_tx_per_s"`
	RecvText   Spread `json:"recvlogical_text_tx_per_s"`
	RecvBinary Spread `json:"recvlogical_binary_tx_per_s"`
	Poll       Spread `json:"poll_tx_per_s"`
	// RatioBinary is figure B: relay ÷ pg_recvlogical with binary=true,
	// which is what the relay asks pgoutput for. RatioText is against the
	// text mode. PollRatio is the polling relay ÷ the CDC relay.
	RatioBinary Spread `json:"relay_over_recvlogical_binary"`
	RatioText   Spread `json:"relay_over_recvlogical_text"`
	PollRatio   Spread `json:"poll_over_relay"`
	// RelayPerEntry is the relay's messages per broker entry.
	RelayPerEntry Spread `json:"relay_messages_per_entry"`
	// CPU per transaction during the relay's drain, µs.
	RelayCPU    Spread `json:"relay_cpu_us_per_tx"`
	BrokerCPU   Spread `json:"broker_cpu_us_per_tx"`
	PostgresCPU Spread `json:"postgres_cpu_us_per_tx"`
	// Debezium Server's drains (figure B‴): its rate from exec to the
	// last message read back, the relay ÷ it, the CPU of its JVM per
	// transaction and its peak RSS over the runs. DebeziumNotMeasured says
	// why there are none, or why some runs have none.
	Debezium            Spread  `json:"debezium_tx_per_s"`
	DebeziumRatio       Spread  `json:"relay_over_debezium"`
	DebeziumCPU         Spread  `json:"debezium_cpu_us_per_tx"`
	DebeziumRSS         float64 `json:"debezium_peak_rss_mib"`
	DebeziumVersion     string  `json:"debezium_version"`
	DebeziumNotMeasured string  `json:"debezium_not_measured,omitempty"`
	// Peak RSS in MiB over the whole scenario (every incarnation).
	RelayRSS  float64            `json:"relay_peak_rss_mib"`
	BrokerRSS float64            `json:"broker_peak_rss_mib"`
	PeakRSS   map[string]float64 `json:"peak_rss_mib"`
	Runs      []DrainRun         `json:"runs"`
}

// DrainRun is one backlog and its four drains.
type DrainRun struct {
	Order      []string    `json:"order"` // the order the three WAL drains ran in
	EndLSN     string      `json:"end_lsn"`
	Relay      DrainTiming `json:"relay"`
	RecvText   DrainTiming `json:"recvlogical_text"`
	RecvBinary DrainTiming `json:"recvlogical_binary"`
	Poll       DrainTiming `json:"poll"`
	// RelayStartup is from exec to the relay answering /readyz (every
	// source streaming); RelayFromReady is the relay's rate counted from
	// then, an upper bound on its rate once started.
	RelayStartupMillis float64 `json:"relay_startup_ms"`
	RelayFromReady     float64 `json:"relay_from_ready_tx_per_s"`
	// RelayPerEntry is the relay's messages per broker entry over its
	// drain: how much it batched (GET /v1/lag, messages over entries_sent).
	RelayPerEntry float64 `json:"relay_messages_per_entry"`
	// Published and Left count the polling relay's messages and the rows
	// left in its table at the end (0 when it drained everything).
	Published int64 `json:"poll_published"`
	Left      int64 `json:"poll_left"`
	// Debezium is Debezium Server's drain of the same WAL (figure B‴); nil
	// when it was not measured, and DebeziumError says why.
	Debezium      *DebeziumDrain `json:"debezium,omitempty"`
	DebeziumError string         `json:"debezium_error,omitempty"`
}

// DrainTiming is one drain: its wall time and the CPU of each process
// involved, in µs per transaction.
type DrainTiming struct {
	Seconds   float64            `json:"seconds"`
	TxPerSec  float64            `json:"tx_per_s"`
	CPUMicros map[string]float64 `json:"cpu_us_per_tx"`
}

const (
	// benchNamespace holds the drain's topics, beside alpes's own in the
	// stack's tenant; the relay publishes only where deduplication is on.
	benchNamespace  = eventcatalog.DefaultTenant + "/bench"
	benchDrainTopic = "persistent://" + benchNamespace + "/drain.v1"
	benchPollTopic  = "persistent://" + benchNamespace + "/poll.v1"
	benchType       = "alpes.bench.v1.Probe" // unknown to the catalogue, so the relay publishes it as is
	pollDatabase    = "bench_poll"
	drainSource     = "orders"
)

// drainStack is one stack of the scenario and the runs drained on it.
type drainStack struct {
	broker string
	sys    *system
	runs   []DrainRun
}

// drain measures B on the embedded broker and on Apache Pulsar. When
// Apache Pulsar cannot be run it still measures the embedded broker and
// returns the reason as its error.
func (r *runner) drain(ctx context.Context) (*Drain, error) {
	embedded, err := r.drainSystem(ctx, procstack.Options{})
	if err != nil {
		return nil, err
	}
	defer embedded.close()
	stacks := []*drainStack{{broker: brokerEmbedded, sys: embedded}}
	pulsar, pulsarErr := r.drainSystemOnPulsar(ctx)
	if pulsarErr != nil {
		r.printf("   %v; draining into the embedded broker only", pulsarErr)
	} else {
		defer pulsar.close()
		stacks = append(stacks, &drainStack{broker: brokerPulsar, sys: pulsar})
	}

	d := &Drain{Backlog: r.opts.Sizes.Backlog}
	for run := range r.opts.Runs {
		order := slices.Clone(stacks)
		if run%2 == 1 {
			slices.Reverse(order)
		}
		for _, st := range order {
			dr, err := r.drainRun(ctx, st.sys, run)
			if err != nil {
				return d, fmt.Errorf("%s broker: %w", st.broker, err)
			}
			dbz := "not measured"
			if dr.Debezium != nil {
				dbz = fmt.Sprintf("%.0f (first message after %.1f s)", dr.Debezium.TxPerSec, dr.Debezium.FirstMessageMillis/1000)
			}
			r.printf("   B run %d, %s broker: relay %.0f tx/s, pg_recvlogical binary %.0f, text %.0f, polling %.0f, Debezium Server %s",
				run+1, st.broker, dr.Relay.TxPerSec, dr.RecvBinary.TxPerSec, dr.RecvText.TxPerSec, dr.Poll.TxPerSec, dbz)
			st.runs = append(st.runs, dr)
		}
	}
	d.DrainFigures = summarizeDrain(brokerEmbedded, stacks[0].runs, embedded.usage(ctx))
	if len(stacks) > 1 {
		f := summarizeDrain(brokerPulsar, stacks[1].runs, pulsar.usage(ctx))
		d.Pulsar = &f
	}
	// Debezium Server not measured does not fail B: the report's B‴ rows
	// say "not measured" and why.
	return d, pulsarErr
}

// drainSystem starts a stack with opts and prepares it for B: the drain's
// namespace with deduplication on (a real Pulsar has none it was not asked
// for) and the polling baseline's table.
func (r *runner) drainSystem(ctx context.Context, opts procstack.Options) (*system, error) {
	sys, err := r.startStack(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := pulsaradmin.New(sys.BrokerAdminURL, "").EnsureNamespace(ctx, benchNamespace, true); err != nil {
		sys.close()
		return nil, fmt.Errorf("creating the drain's namespace: %w", err)
	}
	if err := createPollTable(ctx, sys); err != nil {
		sys.close()
		return nil, err
	}
	return sys, nil
}

// drainSystemOnPulsar is drainSystem with Apache Pulsar standalone as the
// stack's broker process.
func (r *runner) drainSystemOnPulsar(ctx context.Context) (*system, error) {
	dist, err := r.pulsarDistribution(ctx)
	if err != nil {
		return nil, err
	}
	sys, err := r.drainSystem(ctx, procstack.Options{Pulsar: devstack.PulsarReal, PulsarDistribution: dist})
	if err != nil {
		return nil, fmt.Errorf("on Apache Pulsar: %w", err)
	}
	return sys, nil
}

// summarizeDrain summarises one stack's runs; u is the stack's usage at
// the end, for the peak RSS.
func summarizeDrain(broker string, runs []DrainRun, u usage) DrainFigures {
	d := DrainFigures{Broker: broker, Runs: runs}
	rate := func(f func(DrainRun) DrainTiming) Spread {
		return spreadBy(runs, func(dr DrainRun) float64 { return f(dr).TxPerSec })
	}
	d.Relay = rate(func(dr DrainRun) DrainTiming { return dr.Relay })
	d.RecvText = rate(func(dr DrainRun) DrainTiming { return dr.RecvText })
	d.RecvBinary = rate(func(dr DrainRun) DrainTiming { return dr.RecvBinary })
	d.Poll = rate(func(dr DrainRun) DrainTiming { return dr.Poll })
	d.RatioBinary = spreadBy(runs, func(dr DrainRun) float64 { return dr.Relay.TxPerSec / dr.RecvBinary.TxPerSec })
	d.RatioText = spreadBy(runs, func(dr DrainRun) float64 { return dr.Relay.TxPerSec / dr.RecvText.TxPerSec })
	d.PollRatio = spreadBy(runs, func(dr DrainRun) float64 { return dr.Poll.TxPerSec / dr.Relay.TxPerSec })
	d.RelayPerEntry = spreadBy(runs, func(dr DrainRun) float64 { return dr.RelayPerEntry })
	d.RelayCPU = spreadBy(runs, func(dr DrainRun) float64 { return dr.Relay.CPUMicros["relay"] })
	d.BrokerCPU = spreadBy(runs, func(dr DrainRun) float64 { return dr.Relay.CPUMicros["broker"] })
	d.PostgresCPU = spreadBy(runs, func(dr DrainRun) float64 { return dr.Relay.CPUMicros[componentPostgres] })
	summarizeDebezium(&d, runs)
	d.PeakRSS = peakRSS(u)
	d.RelayRSS, d.BrokerRSS = d.PeakRSS["relay"], d.PeakRSS["broker"]
	return d
}

// summarizeDebezium summarises Debezium Server's drains of runs into d; a
// run without one counts as not measured.
func summarizeDebezium(d *DrainFigures, runs []DrainRun) {
	d.DebeziumVersion = debeziumVersion
	var measured []DrainRun
	var why []string
	for i, dr := range runs {
		if dr.Debezium == nil {
			reason := dr.DebeziumError
			if reason == "" {
				reason = "no drain"
			}
			why = append(why, fmt.Sprintf("run %d: %s", i+1, reason))
			continue
		}
		measured = append(measured, dr)
		d.DebeziumRSS = max(d.DebeziumRSS, dr.Debezium.PeakRSSMiB)
	}
	d.Debezium = spreadBy(measured, func(dr DrainRun) float64 { return dr.Debezium.TxPerSec })
	d.DebeziumRatio = spreadBy(measured, func(dr DrainRun) float64 { return dr.Relay.TxPerSec / dr.Debezium.TxPerSec })
	d.DebeziumCPU = spreadBy(measured, func(dr DrainRun) float64 { return dr.Debezium.CPUMicros["debezium"] })
	if len(why) > 0 {
		d.DebeziumNotMeasured = strings.Join(why, "; ")
		if len(measured) == 0 && len(runs) > 0 && allSame(why, runs) {
			d.DebeziumNotMeasured = runs[0].DebeziumError
		}
	}
}

// allSame reports whether every run gave the same reason.
func allSame(why []string, runs []DrainRun) bool {
	for _, dr := range runs {
		if dr.DebeziumError != runs[0].DebeziumError {
			return false
		}
	}
	return len(why) == len(runs)
}
