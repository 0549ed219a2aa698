package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// mdDebeziumSummary writes B‴'s rows of the summary, one per broker, and
// B″ on Apache Pulsar beside the embedded broker's: the relay ÷ Debezium
// Server, or why it was not measured.
func (rep *Report) mdDebeziumSummary(w *mdWriter) {
	d := rep.Drain
	if p := d.Pulsar; p != nil && p.PollRatio.Median > 0 {
		w.row("**B″.** the same, "+brokerLabel(brokerPulsar, rep.Machine.Pulsar), num(1/p.PollRatio.Median, 2), fmt.Sprintf("≥ %.0f", targetOverPoll), verdict(1/p.PollRatio.Median >= targetOverPoll))
	}
	target := fmt.Sprintf("≥ %.0f", targetOverDebezium)
	for i, f := range []*DrainFigures{&d.DrainFigures, d.Pulsar} {
		name := "**B‴.** relay ÷ Debezium Server, embedded broker"
		if i == 1 {
			name = "**B‴.** the same, " + brokerLabel(brokerPulsar, rep.Machine.Pulsar)
		}
		switch {
		case f == nil:
			w.row(name, "not measured: Apache Pulsar did not run (see the failures above)", target, "")
		case len(f.DebeziumRatio.Values) == 0:
			w.row(name, "not measured: "+mdCell(f.DebeziumNotMeasured), target, "")
		default:
			w.row(name, spread(f.DebeziumRatio, 2, ""), target, verdict(f.DebeziumRatio.Median >= targetOverDebezium))
		}
	}
}

// debeziumCells are B‴'s cells of the per-broker table: Debezium Server's
// rate and the relay ÷ it.
func debeziumCells(f *DrainFigures) (rate, ratio string) {
	if len(f.DebeziumRatio.Values) == 0 {
		return "not measured", "—"
	}
	return spread(f.Debezium, 0, ""), "**" + spread(f.DebeziumRatio, 2, "") + "**"
}

// mdDebezium renders how Debezium Server ran in B and what it cost, per
// broker.
func (rep *Report) mdDebezium(w *mdWriter) {
	d := rep.Drain
	w.line("")
	w.line("### Debezium Server beside the relay (B‴)")
	w.line("")
	w.linef("**Method.** Debezium Server %s (fetched once with Maven into `~/.cache/alpes/debezium`), started as its `run.sh` does but with the JVM as the bench's child (`java -cp runner:conf:lib/* io.debezium.server.Main`, the JVM's default heap), drains the same WAL as the relay and `pg_recvlogical`, in the same rotation: the Postgres connector (pgoutput) on a slot of its own created beside theirs before the backlog is written, and a publication of its own on the orders outbox (inserts only); no snapshot; the outbox event router maps the outbox's columns (event id `id`, key `aggregate_id`, payload `payload`, `type`, `schema_version` and `headers` as headers) and routes by the `topic` column to a topic of its own per run in the drain's namespace (`debezium.r<run>.drain.v1`, so the relay's topics and their deduplication state are left alone); the Pulsar sink publishes into the stack's broker process, unbatched as the poller (batches of mixed orders would break per-order order on Key_Shared; the relay batches by lane), under a stable producer name; offsets in a file of the run's directory, flushed after every batch. Timed from exec of the JVM until a reader in the bench process (pulsar-client-go, subscribed before the start, from the earliest message) has every message of the backlog; the run fails on a shortfall. CPU per transaction is the JVM's (from `/proc`, its start included) and the other processes' over the same interval; peak RSS is the JVM's VmHWM. Figure B‴ is the relay's rate ÷ Debezium Server's, both counted from exec, on the same backlog and broker.",
		d.DebeziumVersion)
	w.line("")
	w.table("broker", "Debezium tx/s", "**B‴**: relay ÷ Debezium", "first message after", "tx/s from the first message", "JVM CPU µs/tx (from the first message)", "broker CPU µs/tx", "Postgres CPU µs/tx", "JVM peak RSS")
	for _, f := range []*DrainFigures{&d.DrainFigures, d.Pulsar} {
		if f == nil {
			continue
		}
		label := brokerLabel(f.Broker, rep.Machine.Pulsar)
		if len(f.DebeziumRatio.Values) == 0 {
			w.row(label, "not measured: "+mdCell(f.DebeziumNotMeasured), "", "", "", "", "", "", "")
			continue
		}
		var first, fromFirst, stream, broker, pg []float64
		for _, dr := range f.Runs {
			if z := dr.Debezium; z != nil {
				first = append(first, z.FirstMessageMillis/1000)
				fromFirst = append(fromFirst, z.FromFirst)
				stream = append(stream, z.StreamCPU)
				broker = append(broker, z.CPUMicros["broker"])
				pg = append(pg, z.CPUMicros[componentPostgres])
			}
		}
		w.row(label, spread(f.Debezium, 0, ""), "**"+spread(f.DebeziumRatio, 2, "")+"**",
			spread(spreadOf(first), 1, " s"), spread(spreadOf(fromFirst), 0, ""),
			spread(f.DebeziumCPU, 1, "")+" ("+spread(spreadOf(stream), 1, "")+")",
			spread(spreadOf(broker), 1, ""), spread(spreadOf(pg), 1, ""), num(f.DebeziumRSS, 0)+" MiB")
		if f.DebeziumNotMeasured != "" {
			w.line("")
			w.linef("Not measured in some runs on the %s broker: %s.", f.Broker, mdCell(f.DebeziumNotMeasured))
		}
	}
	for _, f := range []*DrainFigures{&d.DrainFigures, d.Pulsar} {
		if f == nil {
			continue
		}
		for _, dr := range slices.Backward(f.Runs) {
			if z := dr.Debezium; z != nil && len(z.SampleProperties) > 0 {
				var props []string
				for _, k := range slices.Sorted(maps.Keys(z.SampleProperties)) {
					props = append(props, fmt.Sprintf("`%s`=`%s`", k, z.SampleProperties[k]))
				}
				w.line("")
				w.linef("What the event router made of a row (the last run's first message on the %s broker): key `%s`, properties %s.",
					f.Broker, z.SampleKey, strings.Join(props, ", "))
				return
			}
		}
	}
}

// mdCell keeps text on one line of a table, without pipes.
func mdCell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", "\\|")
}
