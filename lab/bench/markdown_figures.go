package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/alpes/alpes/migrations"
)

// The report's section of each figure: its method, then its numbers.

func (rep *Report) mdThroughput(w *mdWriter) {
	t := rep.Throughput
	if t == nil {
		return
	}
	sz := rep.Sizes
	w.line("")
	w.line("## A. Orders per second through the whole pipeline")
	w.line("")
	w.linef("**Method.** A fresh stack per run (`lab/procstack`: every component its own process). After a short warm-up, the open-loop client (`lab/loadgen`: order *i* is due at *i*/rate, latencies run from the due time, so a slow system cannot slow the client down) places orders for %s at each rate, starting at %s/s and multiplying by %s, up to %s/s. A rate **holds** when every accepted order reaches a terminal state, nothing is refused or fails, the bff keeps up (HTTP accept p99, measured from each order's due time, at most %s ms: beyond that the queue is at the front door, and everything behind it keeps up with what the bff lets in), outcomes come in time (p99 from due time to the client's knowing the outcome at most %s ms), and neither the relay's lag (GET /v1/lag, `seconds_behind`) nor any consumer's (GET /v1/progress: per order-flow topic the larger of commit → applied of the newest message and the time since anything was applied) grows over the step: sampled every %s, a lag grows when the median of the last third of the step is above %s s (relay) or %s s (consumers) and above 1.5 times the median of the first third. The run stops at the first rate that does not hold. CPU per order is each process's CPU time from the step's start until the pipeline is idle again, divided by the orders accepted; Postgres's is the postmaster's and all its children's (`/proc`), the load generator's is the bench process's own.",
		sz.RampStep, num(sz.RampStart, 0), num(sz.RampFactor, 2), num(sz.RampMax, 0), num(t.Criteria.AcceptP99MaxMs, 0), num(t.Criteria.OutcomeP99MaxMs, 0), t.Criteria.SampleEvery,
		num(t.Criteria.RelayFloorSeconds, 2), num(t.Criteria.ConsumerFloorSeconds, 2))
	w.line("")
	w.table("", "median [min–max]")
	w.row("highest rate that held", spread(t.Rate, 0, " orders/s"))
	w.row("HTTP accept p50 at that rate", spread(t.AcceptP50, 1, " ms"))
	w.row("HTTP accept p99 at that rate", spread(t.AcceptP99, 1, " ms"))
	w.row("due → terminal state p99 at that rate", spread(t.OutcomeP99, 1, " ms"))
	for i, rr := range t.Runs {
		w.line("")
		w.linef("Run %d:", i+1)
		w.line("")
		w.table("rate", "accepted", "settled", "accept p50 / p99", "outcome p99", "relay lag, first → last third", "slowest consumer, last third", "CPU per order", "holds")
		for _, s := range rr.Steps {
			slow, slowV := "", 0.0
			for _, name := range slices.Sorted(maps.Keys(s.ConsumerTail)) {
				if v := s.ConsumerTail[name]; v >= slowV {
					slow, slowV = name, v
				}
			}
			holds := "yes"
			if !s.Holds {
				holds = "no: " + strings.Join(s.Why, "; ")
			}
			w.row(num(s.Rate, 0)+"/s", num(float64(s.Summary.Accepted), 0),
				num(float64(s.Summary.Confirmed+s.Summary.Rejected), 0),
				num(s.Summary.AcceptLatency.P50, 1)+" / "+num(s.Summary.AcceptLatency.P99, 1)+" ms",
				num(s.Summary.OutcomeLatency.P99, 0)+" ms",
				num(s.RelayHead, 3)+" → "+num(s.RelayTail, 3)+" s",
				fmt.Sprintf("%s %s s", slow, num(slowV, 3)),
				num(s.Cost.TotalMicros, 0)+" µs", holds)
		}
	}
	if b := t.Bound; b != nil && (b.Held != nil || b.Failed != nil) {
		w.line("")
		w.line("### What bounds it")
		w.line("")
		w.line("Cost per accepted order, in the run with the median rate, at the highest rate that held and at the first that did not. The CPU ceiling is what the measured CPU per order allows on this machine's cores if nothing else limited it.")
		w.line("")
		var steps []*RampStep
		head := []string{"per order"}
		for _, s := range []*RampStep{b.Held, b.Failed} {
			if s != nil {
				steps = append(steps, s)
				head = append(head, "at "+num(s.Rate, 0)+"/s")
			}
		}
		w.table(head...)
		components := map[string]bool{}
		for _, s := range steps {
			for name := range s.Cost.CPUMicros {
				components[name] = true
			}
		}
		for _, name := range slices.Sorted(maps.Keys(components)) {
			cells := []string{"CPU, " + name}
			for _, s := range steps {
				cells = append(cells, num(s.Cost.CPUMicros[name], 0)+" µs")
			}
			w.row(cells...)
		}
		rows := []struct {
			name string
			f    func(*RampStep) string
		}{
			{"**CPU, every process**", func(s *RampStep) string { return "**" + num(s.Cost.TotalMicros, 0) + " µs**" }},
			{"CPU ceiling on " + fmt.Sprint(rep.Machine.Cores) + " cores", func(s *RampStep) string { return num(s.Cost.CPUCeiling, 0) + " orders/s" }},
			{"Postgres transactions committed (read-only ones too)", func(s *RampStep) string { return num(s.Cost.TotalXacts, 1) }},
			{"WAL flushes (fsync)", func(s *RampStep) string { return num(s.Cost.WALSyncs, 2) }},
			{"WAL written", func(s *RampStep) string { return num(s.Cost.WALBytes/1024, 1) + " KiB" }},
		}
		for _, db := range migrations.Services {
			rows = append(rows, struct {
				name string
				f    func(*RampStep) string
			}{"transactions in " + db, func(s *RampStep) string { return num(s.Cost.Xacts[db], 1) }})
		}
		for _, r := range rows {
			cells := []string{r.name}
			for _, s := range steps {
				cells = append(cells, r.f(s))
			}
			w.row(cells...)
		}
		if s := b.Held; s != nil && s.Cost.TotalMicros > 0 {
			top, topV := "", 0.0
			for name, v := range s.Cost.CPUMicros {
				if v > topV {
					top, topV = name, v
				}
			}
			w.line("")
			w.linef("At %s/s the processes used %s µs of CPU per order together, %s %% of it in %s: the box's %d cores allow about %s orders/s before anything else. Postgres committed %s transactions per order (read-only ones included) and flushed its WAL %s times. See [performance.md](%s#what-bounds-the-pipeline) for what would move it.",
				num(s.Rate, 0), num(s.Cost.TotalMicros, 0), num(topV/s.Cost.TotalMicros*100, 0), top, rep.Machine.Cores,
				num(s.Cost.CPUCeiling, 0), num(s.Cost.TotalXacts, 1), num(s.Cost.WALSyncs, 2), rep.analysisPath())
		}
	}
}

func (rep *Report) mdDrain(w *mdWriter) {
	d := rep.Drain
	if d == nil {
		return
	}
	w.line("")
	w.line("## B. Relay drain rate ÷ raw decode rate, and a polling outbox")
	w.line("")
	w.linef("**Method.** Two stacks, each for all runs and both up throughout: one whose broker process is the embedded broker (`alpes broker --data`), one whose broker process is %s (its data directory, deduplication on); their runs interleave, the order alternating from run to run, and everything below the comparison is the embedded broker's stack. Per run and stack, the relay (its own process, `alpes relay`) is stopped and its slot on the orders database advanced to the current WAL position, two more pgoutput slots are created there, and %s single-row outbox transactions are committed into the orders outbox (128-byte payload, a `traceparent` header, 1,000 keys, one topic nobody consumes; one `DO` block that commits after each row, `synchronous_commit=off` for that session only, then one synchronous commit to flush it). Then the same WAL is drained three times (four with Debezium Server, B‴ below), in an order that rotates from run to run: by `pg_recvlogical` in text mode and with `-o binary=true` (pgoutput, `proto_version=1`, the relay's publication, to `/dev/null`; exec to exit), and by the relay (started again; from exec until its own confirmed position in GET /v1/lag, which moves with every broker receipt, reaches the end of the backlog), publishing to the broker's process, both durable. The relay asks pgoutput for binary tuples, so the binary ratio is figure B; in text mode the walsender converts every uuid, bytea and jsonb to text, which costs it more. CPU per transaction is each process's CPU time over the drain; Postgres's includes the walsender.",
		brokerLabel(brokerPulsar, rep.Machine.Pulsar), num(float64(d.Backlog), 0))
	rep.mdDrainBrokers(w)
	rep.mdDebezium(w)
	w.line("")
	w.linef("The **polling baseline** then drains a copy of the same backlog (same rows, same count), written into a table of a scratch database (`%s.poll_outbox`: the outbox's columns and an identity column), the way polling relays work: in one transaction, `SELECT … ORDER BY seq LIMIT %d FOR UPDATE SKIP LOCKED`, publish each row to the broker (unbatched, the properties the relay sets), wait for every receipt, `DELETE` the batch, commit (synchronously). One poller, in the bench process.",
		pollDatabase, rep.Sizes.PollBatch)
	w.line("")
	w.line("On the embedded broker:")
	w.line("")
	w.table("", "transactions/s", "÷ pg_recvlogical binary")
	w.row("pg_recvlogical, binary", spread(d.RecvBinary, 0, ""), "1")
	w.row("pg_recvlogical, text", spread(d.RecvText, 0, ""), "")
	w.row("**relay** → embedded broker", spread(d.Relay, 0, ""), "**"+spread(d.RatioBinary, 2, "")+"**")
	w.row("polling outbox → embedded broker", spread(d.Poll, 0, ""), "")
	w.line("")
	w.linef("Relay ÷ pg_recvlogical in text mode: %s. Polling ÷ relay: %s.", spread(d.RatioText, 2, ""), spread(d.PollRatio, 2, ""))
	if len(d.Runs) > 0 {
		w.line("")
		w.line("CPU per transaction, µs, in the last run:")
		w.line("")
		w.table("drain", "relay", "broker", "Postgres", "pg_recvlogical", "poller")
		last := d.Runs[len(d.Runs)-1]
		for _, x := range []struct {
			name string
			t    DrainTiming
		}{{"pg_recvlogical, binary", last.RecvBinary}, {"pg_recvlogical, text", last.RecvText}, {"relay", last.Relay}, {"polling", last.Poll}} {
			cell := func(k string) string {
				if v, ok := x.t.CPUMicros[k]; ok {
					return num(v, 1)
				}
				return ""
			}
			w.row(x.name, cell("relay"), cell("broker"), cell(componentPostgres), cell("pg_recvlogical"), cell("poller"))
		}
		w.line("")
		w.linef("Relay start (exec to every source streaming) %s ms in the last run; it is inside the relay's drain time, which counted from then would give %s tx/s. The relay's CPU per transaction over the runs: %s µs, the broker's %s µs, Postgres's %s µs.",
			num(last.RelayStartupMillis, 0), num(last.RelayFromReady, 0), spread(d.RelayCPU, 1, ""), spread(d.BrokerCPU, 1, ""), spread(d.PostgresCPU, 1, ""))
	}
}

func (rep *Report) mdLatency(w *mdWriter) {
	if len(rep.Latency) == 0 {
		return
	}
	sz := rep.Sizes
	w.line("")
	w.line("## C. Commit → applied latency")
	w.line("")
	w.linef("**Method.** One stack per rate, with `track_commit_timestamp=on`. Per run the client places orders at the fixed rate for %s; the first %s are warm-up. Afterwards, for every inbox row of each consumer whose source transaction committed inside the measured window: the commit timestamp of the apply transaction that inserted the row (`pg_xact_commit_timestamp(xmin)`) minus the source transaction's commit time, which the relay carries from pgoutput in the `alpes-commit-time` property and the inbox stores as `source_committed_at`. Both are commit-record timestamps of the same Postgres on the same clock, taken just before each commit's WAL flush: the figure includes the source's flush, the relay, the broker and the consumer's apply, not the consumer's own flush. An order makes several messages (PlaceOrder, OrderPlaced, PaymentProcessed, OrderConfirmed or OrderRejected), each counted in every consumer that records it in its inbox, including those it records and skips (a type it has nothing to do with). The first rate is figure C's: half of what A′ held in the same run when A ran (the target is stated at that load), else the first of the run's sizes; the others are context. Where a rate is above what A′ held, the latencies there measure a growing backlog.",
		sz.LatencyWarmUp+sz.LatencyDuration, sz.LatencyWarmUp)
	for _, l := range rep.Latency {
		w.line("")
		w.linef("### At %s orders/s (%s)", num(l.Rate, 0), orDefault(l.RateBasis, "the run's sizes"))
		if t := rep.Throughput; t != nil && len(t.Rate.Values) > 0 && l.Rate > t.Rate.Median {
			w.line("")
			w.linef("Above the %s orders/s that A found sustained: the consumers fall behind during the window.", num(t.Rate.Median, 0))
		}
		w.line("")
		w.table("consumer", "messages (last run)", "p50", "p99", "p99.9")
		for _, db := range migrations.Services {
			msgs := ""
			if len(l.Runs) > 0 {
				msgs = num(float64(l.Runs[len(l.Runs)-1].Consumers[db].Messages), 0)
			}
			w.row(db, msgs, spread(l.P50[db], 1, " ms"), spread(l.P99[db], 1, " ms"), spread(l.P999[db], 1, " ms"))
		}
		if len(l.Runs) > 0 {
			c := l.Runs[len(l.Runs)-1].Client
			w.line("")
			w.linef("The client in the last run: %s orders, %s accepted, %s unresolved; due → terminal state p50 %s ms, p99 %s ms.",
				num(float64(c.Sent), 0), num(float64(c.Accepted), 0), num(float64(c.Unresolved), 0),
				num(c.OutcomeLatency.P50, 1), num(c.OutcomeLatency.P99, 1))
		}
	}
}

func (rep *Report) mdConstancy(w *mdWriter) {
	c := rep.Constancy
	if c == nil {
		return
	}
	window := time.Duration(c.WindowSeconds * float64(time.Second))
	w.line("")
	w.linef("## D. Constancy: %s at %s orders/s", time.Duration(c.DurationSeconds*float64(time.Second)), num(c.Rate, 0))
	w.line("")
	w.linef("**Method.** A fresh stack; the relay keeps outbox rows for %s (`--outbox-retention`; it sweeps once a minute), so that the outbox can level off within the run. After a 2 s warm-up, one open-loop client per %s window, each started on the window's due time, places orders at the fixed rate back to back. A window's throughput is the orders that reached their terminal state in it (the bff's order view, by `updated_at`), per second. Every second the outbox rows of the three producing databases, the largest `pg_current_wal_lsn() − confirmed_flush_lsn` of the logical slots, and the relay's `seconds_behind` are sampled. Spread is the largest distance of a window from the median window, in %% of the median. Slot lag counts as bounded when the second half of the run never exceeds 1.5 times the first half's maximum (or 16 MiB); the outbox when its second half stays within 1.2 times the first's, judged only when the run is long enough to fill it (twice the retention plus a sweep interval). D runs once whatever `--runs` says: its windows are its repetitions.",
		time.Duration(c.RetentionSecs*float64(time.Second)), window)
	w.linef("The rate is %s.", orDefault(c.RateBasis, "the run's sizes"))
	w.line("")
	w.linef("Beside each window, the Postgres background work that began in it: checkpoints (`pg_stat_bgwriter`; `checkpoint_timeout` is Postgres's default, 5 min, and the first WAL record to touch a page after one carries the whole page, `full_page_writes` being on) and autovacuum or autoanalyze runs on the producing databases' tables.")
	w.line("")
	w.table("window", "placed/s", "settled/s", "accept p50", "accept p99", "outcome p99", "unresolved", "checkpoints", "autovacuums")
	for i, win := range c.Windows {
		w.row(fmt.Sprint(i+1), num(win.Offered, 1), num(win.Throughput, 1), num(win.Client.AcceptLatency.P50, 1)+" ms", num(win.Client.AcceptLatency.P99, 1)+" ms",
			num(win.Client.OutcomeLatency.P99, 0)+" ms", num(float64(win.Client.Unresolved), 0),
			num(float64(win.Checkpoints), 0), num(float64(win.Autovacuums), 0))
	}
	w.line("")
	w.table("", "median window [min–max]", "spread vs median")
	w.row("throughput (settled/s)", spread(c.Throughput, 1, "/s"), "±"+num(c.ThroughputDevPct, 1)+" %")
	w.row("HTTP accept p99", spread(c.AcceptP99, 1, " ms"), "±"+num(c.AcceptP99DevPct, 1)+" %")
	w.row("due → terminal state p99", spread(c.OutcomeP99, 1, " ms"), "±"+num(c.OutcomeP99DevPct, 1)+" %")
	w.line("")
	w.table("sampled every second", "max, first half", "max, second half", "")
	w.row("outbox rows (bff + orders + payments)", num(float64(c.OutboxMax[0]), 0), num(float64(c.OutboxMax[1]), 0), bounded(c.OutboxBounded))
	w.row("slot lag", num(float64(c.SlotLagMax[0])/(1<<20), 2)+" MiB", num(float64(c.SlotLagMax[1])/(1<<20), 2)+" MiB", bounded(c.SlotLagBounded))
	w.row("relay seconds_behind", num(c.RelayMax[0], 3)+" s", num(c.RelayMax[1], 3)+" s", "")
	w.line("")
	w.linef("Orders: %s accepted, %s settled, %s unresolved, %s refused or failed.",
		num(float64(c.Accepted), 0), num(float64(c.Settled), 0), num(float64(c.Unresolved), 0), num(float64(c.Refused), 0))
}

func (rep *Report) mdMemory(w *mdWriter) {
	d, c := rep.Drain, rep.Constancy
	if d == nil && c == nil {
		return
	}
	w.line("")
	w.line("## E. Memory and CPU per component")
	w.line("")
	w.line("**Method.** Peak RSS is each process's highest `VmHWM` over the scenario (procstack samples it, also before stopping a process), during B on the embedded broker's stack (Apache Pulsar's stack is in B's comparison); CPU per order is the CPU time of each process over D's measured windows and until the pipeline is idle, divided by the orders accepted.")
	w.line("")
	names := map[string]bool{}
	if d != nil {
		for n := range d.PeakRSS {
			names[n] = true
		}
	}
	if c != nil {
		for n := range c.PeakRSS {
			names[n] = true
		}
		for n := range c.Cost.CPUMicros {
			names[n] = true
		}
	}
	w.table("process", "peak RSS during B", "peak RSS during D", "CPU per order during D")
	for _, n := range slices.Sorted(maps.Keys(names)) {
		cells := []string{n, "", "", ""}
		if d != nil {
			if v, ok := d.PeakRSS[n]; ok {
				cells[1] = num(v, 0) + " MiB"
			}
		}
		if c != nil {
			if v, ok := c.PeakRSS[n]; ok {
				cells[2] = num(v, 0) + " MiB"
			}
			if v, ok := c.Cost.CPUMicros[n]; ok {
				cells[3] = num(v, 0) + " µs"
			}
		}
		w.row(cells...)
	}
	if c != nil {
		w.row("**all**", "", "", "**"+num(c.Cost.TotalMicros, 0)+" µs**")
	}
}

// pipelineCost is the pipeline's CPU per order that figure A divides by
// the floor's: A′'s at the highest rate that held, in the run with the
// median rate, else D's over its whole run, else A′'s at the first rate,
// which did not hold; with where it was measured. False when none was.
func (rep *Report) pipelineCost() (Cost, string, bool) {
	t := rep.Throughput
	if t != nil && t.Bound != nil && t.Bound.Held != nil && t.Bound.Held.Cost.TotalMicros > 0 {
		return t.Bound.Held.Cost, fmt.Sprintf("A′ at %s/s", num(t.Bound.Held.Rate, 0)), true
	}
	if c := rep.Constancy; c != nil && c.Cost.TotalMicros > 0 {
		return c.Cost, fmt.Sprintf("D at %s/s", num(c.Rate, 0)), true
	}
	if t != nil && t.Bound != nil && t.Bound.Failed != nil && t.Bound.Failed.Cost.TotalMicros > 0 {
		return t.Bound.Failed.Cost, fmt.Sprintf("A′ at %s/s, which did not hold", num(t.Bound.Failed.Rate, 0)), true
	}
	return Cost{}, "", false
}

// mdFloorSummary writes figure A's row of the summary: the pipeline's CPU
// per order ÷ the floor's.
func (rep *Report) mdFloorSummary(w *mdWriter) {
	f := rep.Floor
	if f == nil || f.TotalCPU.Median <= 0 {
		return
	}
	name, target := "**A.** CPU per order ÷ the Postgres floor", fmt.Sprintf("≤ %.1f", targetCPUOverFloor)
	cost, where, ok := rep.pipelineCost()
	if !ok {
		w.row(name, "the floor alone: "+spread(f.TotalCPU, 0, " µs")+" per order, "+spread(f.Rate, 0, " orders/s"), target, "not judged: A and D did not run")
		return
	}
	ratio := cost.TotalMicros / f.TotalCPU.Median
	w.row(name, fmt.Sprintf("%s (%s µs, %s, ÷ %s µs)", num(ratio, 2), num(cost.TotalMicros, 0), where, num(f.TotalCPU.Median, 0)),
		target, verdict(ratio <= targetCPUOverFloor))
}

func (rep *Report) mdFloor(w *mdWriter) {
	f := rep.Floor
	if f == nil {
		return
	}
	w.line("")
	w.line("## The Postgres floor (A's reference)")
	w.line("")
	w.linef("**Method.** What Postgres alone spends on one successful order: the writes the services make for it in the pipeline, replayed without the services, the relay or the broker, and without the reads the services do to validate, price or deduplicate. Per run a fresh durable cluster, started as the stacks' is (`fsync` and `full_page_writes` on, commits synchronous), with the four service databases created and migrated by the services' own migrations; a logical slot on each producing database (bff, orders, payments), streamed by `pg_recvlogical` to `/dev/null` with the relay's pgoutput options (`proto_version=1`, its publication, `binary=true`, `messages=true`, a status every second), so that the walsenders decode the WAL as the relay's slots make them. %d closed-loop clients in the bench process (pgx, each with a connection to every database as the service's own login, statements prepared once per connection) replay orders as fast as Postgres commits them: an order's part in each database is one pipelined batch, one round trip, run as one implicit transaction. **The four databases are separate, so one order commits four times, once in each**, bff first, as the pipeline commits them. After %s warm-up orders, %s orders are measured, from before the first until every slot has confirmed a logical message written after the last commit. CPU per order is Postgres's (the postmaster and every child, walsenders included, from `/proc`), the bench process's (the replay client: ids, protobuf and JSON encoding, pgx) and the three `pg_recvlogical`s', divided by the orders written. Left out: the services' reads, `apply_progress` (a consumer updates it once per transaction of a whole batch of messages; here it would be one row every client updates), rejected orders, and everything outside Postgres.",
		f.Clients, num(float64(f.WarmUp), 0), num(float64(f.Orders), 0))
	w.line("")
	w.line("One order writes, per database (one batch, one commit each):")
	w.line("")
	w.table("database", "statements", "what")
	what := map[string]string{
		"bff":       "order request, idempotency record, pending view, PlaceOrder into the outbox; inbox row and view update for OrderPlaced, inbox row and view update for OrderConfirmed; one `pg_notify` for the view's long polls",
		"orders":    "inbox row for PlaceOrder, the order, its lines (one statement), OrderPlaced into the outbox; inbox row for PaymentProcessed, the status update, OrderConfirmed into the outbox",
		"payments":  "inbox row for OrderPlaced, the order's snapshot, the payment, PaymentProcessed into the outbox; inbox row for OrderConfirmed (recorded and skipped)",
		"reporting": "for OrderPlaced, PaymentProcessed and OrderConfirmed each: its inbox row, its change of `order_facts` (an insert, then two updates), its timeline entry",
	}
	for _, db := range migrations.Services {
		w.row(db, fmt.Sprint(f.Statements[db]), what[db])
	}
	if len(f.Runs) == 0 {
		return
	}
	last := f.Runs[len(f.Runs)-1]
	w.line("")
	w.table("", "median [min–max]")
	w.row("orders/s", spread(f.Rate, 0, ""))
	w.row("CPU per order, Postgres", spread(f.PostgresCPU, 0, " µs"))
	w.row("CPU per order, replay client", spread(f.ClientCPU, 0, " µs"))
	w.row("CPU per order, pg_recvlogical (three)", spread(f.DecoderCPU, 0, " µs"))
	w.row("**CPU per order, every process**", "**"+spread(f.TotalCPU, 0, " µs")+"**")
	w.row("Postgres transactions per order (last run)", num(last.Cost.TotalXacts, 2))
	w.row("WAL flushes per order (last run)", num(last.Cost.WALSyncs, 2))
	w.row("WAL written per order (last run)", num(last.Cost.WALBytes/1024, 1)+" KiB")
	w.row("decoding caught up after the last commit (last run)", num(last.DecodeCatchUpMillis, 0)+" ms")
	if cost, where, ok := rep.pipelineCost(); ok && f.TotalCPU.Median > 0 && f.PostgresCPU.Median > 0 {
		w.line("")
		w.linef("The pipeline (%s) used %s µs of CPU per order, every process together: %s times the floor's %s µs (figure A). Its Postgres alone used %s µs, %s times the floor's Postgres; it committed %s transactions per order where the floor commits %s, and wrote %s KiB of WAL per order where the floor writes %s KiB.",
			where, num(cost.TotalMicros, 0), num(cost.TotalMicros/f.TotalCPU.Median, 2), num(f.TotalCPU.Median, 0),
			num(cost.CPUMicros[componentPostgres], 0), num(cost.CPUMicros[componentPostgres]/f.PostgresCPU.Median, 2),
			num(cost.TotalXacts, 2), num(last.Cost.TotalXacts, 2), num(cost.WALBytes/1024, 1), num(last.Cost.WALBytes/1024, 1))
	}
}

// orDefault is s, or def when s is empty (reports written before a field
// existed).
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
