package bench

import (
	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// mdDrainBrokers renders B on each broker side by side: figure B's
// definition (relay ÷ pg_recvlogical binary, each on its own stack's
// Postgres), what the relay's drain cost each process, and their memory.
func (rep *Report) mdDrainBrokers(w *mdWriter) {
	d := rep.Drain
	w.line("")
	w.line("Figure B on each broker, measured in the same run (each ratio against the pg_recvlogical drains of its own stack, on the same backlog); the relay's messages per broker entry over its drain (its own counts in GET /v1/lag: how much it batched); CPU per transaction over the relay's drain, peak RSS over the scenario:")
	w.line("")
	w.table("broker", "relay tx/s", "pg_recvlogical binary tx/s", "**B**: relay ÷ binary", "relay ÷ text", "polling ÷ relay",
		"Debezium Server tx/s", "**B‴**: relay ÷ Debezium", "relay messages per entry",
		"broker CPU µs/tx", "relay CPU µs/tx", "Postgres CPU µs/tx", "broker peak RSS", "relay peak RSS")
	row := func(f *DrainFigures) {
		dbz, dbzRatio := debeziumCells(f)
		w.row(brokerLabel(f.Broker, rep.Machine.Pulsar), spread(f.Relay, 0, ""), spread(f.RecvBinary, 0, ""),
			"**"+spread(f.RatioBinary, 2, "")+"**", spread(f.RatioText, 2, ""), spread(f.PollRatio, 2, ""),
			dbz, dbzRatio, spread(f.RelayPerEntry, 1, ""),
			spread(f.BrokerCPU, 1, ""), spread(f.RelayCPU, 1, ""), spread(f.PostgresCPU, 1, ""),
			num(f.BrokerRSS, 0)+" MiB", num(f.RelayRSS, 0)+" MiB")
	}
	row(&d.DrainFigures)
	if d.Pulsar == nil {
		w.row(brokerLabel(brokerPulsar, rep.Machine.Pulsar), "not measured (see the failures above)", "", "", "", "", "", "", "", "", "", "", "", "")
		return
	}
	row(d.Pulsar)
	if n := len(d.Pulsar.Runs); n > 0 {
		last := d.Pulsar.Runs[n-1]
		w.line("")
		w.linef("On Apache Pulsar, relay start (exec to every source streaming) took %s ms in the last run; counted from then the relay drained %s tx/s.",
			num(last.RelayStartupMillis, 0), num(last.RelayFromReady, 0))
	}
}

// mdBroker renders the brokers' own rates, side by side.
func (rep *Report) mdBroker(w *mdWriter) {
	b := rep.Broker
	if b == nil {
		return
	}
	version := rep.Machine.Pulsar
	if b.Pulsar != nil {
		version = b.Pulsar.Version
	}
	w.line("")
	w.line("## The brokers on their own: embedded and Apache Pulsar")
	w.line("")
	w.linef("**Method.** From the bench process: one producer of pulsar-client-go v0.19 sending %s messages of %s bytes asynchronously (at most 10,000 pending) and waiting for every receipt, then one consumer, subscribed before the first send, receiving and acknowledging them all. Messages per second of each phase. (The relay sends with producers of its own, in batches of one lane each: B above.) Two brokers, with the same client settings, their measurements interleaved (the order alternates): the embedded broker (`broker`) started in the bench process for each measurement, durable (a data directory), deduplication on; and %s started once for the scenario by the launcher (`internal/pulsarstandalone`: alpes's standalone.conf, deduplication on, `PULSAR_MEM=%s`), durable by nature (BookKeeper's journal), a fresh topic per measurement in a namespace with deduplication on, after a first load of %s unbatched messages that is not measured (the JVM compiles its hot paths as it runs). Apache Pulsar's JVM is its own process, so its CPU per message (produced and consumed) and its peak RSS are read from `/proc`; the embedded broker shares the bench process with the client, and its own are not separable.",
		num(float64(b.Messages), 0), num(float64(b.PayloadBytes), 0), brokerLabel(brokerPulsar, version), pulsarstandalone.DefaultMemory, num(float64(min(b.Messages, brokerWarmUp)), 0))
	w.line("")
	w.table("broker", "producer", "produce msg/s", "consume msg/s", "broker CPU µs/msg")
	for _, name := range []string{"batching", "unbatched"} {
		c := b.Cases[name]
		w.row("embedded (in process)", name, spread(c.Produce, 0, ""), spread(c.Consume, 0, ""), "in process")
	}
	if b.Pulsar == nil {
		w.row(brokerLabel(brokerPulsar, version), "", "not measured (see the failures above)", "", "")
		return
	}
	for _, name := range []string{"batching", "unbatched"} {
		c := b.Pulsar.Cases[name]
		cpu := "—"
		if c.BrokerCPU != nil {
			cpu = spread(*c.BrokerCPU, 1, "")
		}
		w.row(brokerLabel(brokerPulsar, version), name, spread(c.Produce, 0, ""), spread(c.Consume, 0, ""), cpu)
	}
	w.line("")
	w.linef("Apache Pulsar served %s s after it was started; its JVM's peak RSS over the scenario was %s MiB.",
		num(b.Pulsar.StartupSeconds, 1), num(b.Pulsar.PeakRSS, 0))
}
