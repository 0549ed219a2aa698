package relay_test

// Benchmarks of the relay (issue 4). They measure; they never assert a speed.
// docs/benchmarks.md says how to run them and what the figures mean.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/relay"
)

var (
	benchDrainN = flag.Int("drain.n", 20000,
		"BenchmarkRelayDrain*: outbox transactions (one row each) in the backlog")
	benchC2BRate = flag.Int("c2b.rate", 1000,
		"BenchmarkCommitToBroker: transactions per second the writer commits")
	benchC2BDuration = flag.Duration("c2b.duration", 5*time.Second,
		"BenchmarkCommitToBroker: how long latencies are recorded, after a 1s warm-up")
)

// benchPayload is the payload of every benchmark row: 128 bytes, the size of
// a small protobuf event.
var benchPayload = strings.Repeat("p", 128)

// benchTraceHeaders are the headers the BFF writes with every row.
const benchTraceHeaders = `{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`

// drainRuns counts the drain benchmarks' iterations in this process, so the
// order of the two drains alternates from one run to the next (-count), and
// pg_recvlogical's slots get distinct names.
var drainRuns atomic.Int64

// BenchmarkRelayDrain drains one backlog of single-row outbox transactions
// twice from the same starting point: once with pg_recvlogical (pgoutput to
// /dev/null, the raw decode rate) and once with the relay, in this process,
// publishing to the embedded broker. Only the two drains are timed. Metrics:
// tx/s of each, their ratio (figure B, target ≥ 0.6), and the CPU
// time and peak RSS of this process during the relay's drain, which include
// the broker's.
func BenchmarkRelayDrain(b *testing.B) { benchDrain(b, benchDrainInProcess) }

// BenchmarkRelayDrainChild is BenchmarkRelayDrain with the relay in a child
// process (this test binary re-executed, as the crash tests do), so that its
// own CPU time and peak RSS (figure E, target < 100 MiB) can be told
// apart from the broker's. The child confirms every 100 ms, and its drain
// ends when the slot's confirmed_flush_lsn reaches the end of the backlog.
func BenchmarkRelayDrainChild(b *testing.B) { benchDrain(b, benchDrainChild) }

// benchRelayRun is what one drain by the relay cost.
type benchRelayRun struct {
	wall    time.Duration // start to confirmed end of the backlog
	startup time.Duration // start to streaming, when known
	cpu     time.Duration // user and system CPU time
	peakRSS int64         // bytes, 0 when unknown
	// inFlight is the mean number of messages awaiting receipts, sampled
	// while streaming, when known.
	inFlight float64
}

// benchDrainer drains the backlog up to end with a relay on src.
type benchDrainer struct {
	drain func(tb testing.TB, db *pgtest.DB, broker *testBroker, src relay.SourceConfig, end pglogrepl.LSN) benchRelayRun
	who   string // whose CPU and RSS the run measures, for metric names
}

var (
	benchDrainInProcess = benchDrainer{drain: benchDrainRelayInProcess, who: "process"}
	benchDrainChild     = benchDrainer{drain: benchDrainRelayChild, who: "relay"}
)

// benchDrain is the body of the drain benchmarks: per iteration, a backlog
// behind two slots, drained by pg_recvlogical and by the relay through d.
func benchDrain(b *testing.B, d benchDrainer) {
	n := *benchDrainN
	var recvTime, recvCPU, recvWalsender, relayWalsender time.Duration
	var relayRuns benchRelayRun
	b.StopTimer()
	for range b.N {
		db := pgtest.New(b, "orders")
		broker := startBroker(b)
		admin := db.Pool(b)
		ctx := context.Background()

		src := broker.source(db)
		recvSlot := fmt.Sprintf("bench_recv_%d", drainRuns.Load())
		for _, slot := range []string{src.Slot, recvSlot} {
			if _, err := admin.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
				b.Fatalf("creating slot %s: %v", slot, err)
			}
		}
		end := benchBacklog(ctx, b, admin, broker.topic, n)

		recvlogical := func() {
			walsender := benchWatchWalsender(admin, recvSlot)
			b.StartTimer()
			wall, cpu := benchRecvlogical(b, db, recvSlot, end)
			b.StopTimer()
			recvTime += wall
			recvCPU += cpu
			recvWalsender += walsender()
		}
		relayDrain := func() {
			walsender := benchWatchWalsender(admin, src.Slot)
			b.StartTimer()
			r := d.drain(b, db, broker, src, end)
			b.StopTimer()
			relayWalsender += walsender()
			relayRuns.wall += r.wall
			relayRuns.startup += r.startup
			relayRuns.cpu += r.cpu
			relayRuns.peakRSS = max(relayRuns.peakRSS, r.peakRSS)
			relayRuns.inFlight += r.inFlight / float64(b.N)
		}
		if drainRuns.Add(1)%2 == 1 {
			recvlogical()
			relayDrain()
		} else {
			relayDrain()
			recvlogical()
		}
	}
	total := float64(n * b.N)
	recvRate, relayRate := total/recvTime.Seconds(), total/relayRuns.wall.Seconds()
	b.ReportMetric(recvRate, "recvlogical_tx/s")
	b.ReportMetric(relayRate, "relay_tx/s")
	b.ReportMetric(relayRate/recvRate, "relay/recvlogical")
	b.ReportMetric(float64(recvCPU.Microseconds())/total, "recvlogical_cpu_us/tx")
	b.ReportMetric(float64(relayRuns.cpu.Microseconds())/total, d.who+"_cpu_us/tx")
	if recvWalsender > 0 && relayWalsender > 0 {
		b.ReportMetric(float64(recvWalsender.Microseconds())/total, "recvlogical_walsender_cpu_us/tx")
		b.ReportMetric(float64(relayWalsender.Microseconds())/total, "relay_walsender_cpu_us/tx")
	}
	if relayRuns.startup > 0 {
		b.ReportMetric(float64(relayRuns.startup.Milliseconds())/float64(b.N), "relay_startup_ms")
	}
	if relayRuns.inFlight > 0 {
		b.ReportMetric(relayRuns.inFlight, "mean_in_flight")
	}
	if relayRuns.peakRSS > 0 {
		b.ReportMetric(float64(relayRuns.peakRSS)/(1<<20), d.who+"_peak_RSS_MiB")
	}
}

// benchBacklog commits n outbox transactions of one row each, for topic, and returns the
// WAL position right after the last commit: the end of the backlog. One DO
// block commits after every row, which writes the backlog much faster than n
// round trips would.
func benchBacklog(ctx context.Context, tb testing.TB, pool *pgxpool.Pool, topic string, n int) pglogrepl.LSN {
	tb.Helper()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	do := fmt.Sprintf(`DO $$
BEGIN
	FOR i IN 1..%d LOOP
		INSERT INTO outbox (id, topic, aggregate_id, type, payload, headers)
		VALUES (gen_random_uuid(), %s, 'order-' || (i %% 1000), 'alpes.test.v1.Probe', convert_to(%s, 'UTF8'), %s);
		COMMIT;
	END LOOP;
END $$`, n, benchQuote(topic), benchQuote(benchPayload), benchQuote(benchTraceHeaders))
	if _, err := conn.Exec(ctx, do); err != nil {
		tb.Fatalf("writing the backlog: %v", err)
	}
	var end string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&end); err != nil {
		tb.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(end)
	if err != nil {
		tb.Fatal(err)
	}
	return lsn
}

// benchQuote quotes s as an SQL string literal.
func benchQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// benchRecvlogical runs pg_recvlogical on slot until it has streamed up to
// end, and returns its wall time, start to exit, and the CPU time it used.
func benchRecvlogical(tb testing.TB, db *pgtest.DB, slot string, end pglogrepl.LSN) (wall, cpu time.Duration) {
	tb.Helper()
	cmd := exec.Command(db.Cluster().BinDir()+"/pg_recvlogical",
		"--start", "--slot", slot, "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+schema.Publication,
		"-f", "/dev/null", "--endpos", end.String(), "-d", db.DSN())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		tb.Fatalf("pg_recvlogical: %v: %s", err, out)
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// benchWatchWalsender follows the CPU time of the walsender that serves
// slot, once one does, by reading /proc/<pid>/stat every 5 ms. The function
// it returns stops the watch and gives the last value read: up to 5 ms (and
// one clock tick) short when the walsender has exited in the meantime, 0 when
// none was seen.
func benchWatchWalsender(admin *pgxpool.Pool, slot string) (stop func() time.Duration) {
	var last atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		pid := 0
		for {
			if pid == 0 {
				const q = `SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1`
				_ = admin.QueryRow(context.Background(), q, slot).Scan(&pid)
			}
			if cpu, ok := benchPidCPU(pid); ok {
				last.Store(int64(cpu))
			}
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() time.Duration {
		close(quit)
		<-done
		return time.Duration(last.Load())
	}
}

// benchPidCPU returns the CPU time (user and system) process pid has used,
// from /proc/<pid>/stat, counting clock ticks of 10 ms (USER_HZ on Linux).
func benchPidCPU(pid int) (time.Duration, bool) {
	if pid == 0 {
		return 0, false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces; the fields after it
	// start with the state (field 3), so utime (14) and stime (15) are the
	// 12th and 13th.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// benchProcessCPU returns the CPU time (user and system) this process has
// used so far.
func benchProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchDrainRelayInProcess starts a relay in this process and measures it
// until its confirmed flush position reaches end. The relay is stopped
// before it returns.
func benchDrainRelayInProcess(tb testing.TB, _ *pgtest.DB, broker *testBroker, src relay.SourceConfig, end pglogrepl.LSN) benchRelayRun {
	tb.Helper()
	// Return the heap of earlier runs (and their brokers) to the kernel, so
	// that the peak is this drain's.
	debug.FreeOSMemory()
	benchResetPeakRSS()
	cpu := benchProcessCPU()
	start := time.Now()
	var run benchRelayRun
	r := startRelay(tb, broker, src)
	defer r.Cancel()
	deadline := start.Add(10 * time.Minute)
	var inFlight, samples int64
	for {
		l := r.Lag()[0]
		if run.startup == 0 && l.State == relay.StateStreaming {
			run.startup = time.Since(start)
		}
		if l.State == relay.StateStreaming {
			inFlight += l.InFlight
			samples++
		}
		if confirmed, err := pglogrepl.ParseLSN(l.ConfirmedFlushLSN); err == nil && confirmed >= end && l.State == relay.StateStreaming {
			run.wall = time.Since(start)
			break
		}
		select {
		case <-r.Done():
			tb.Fatalf("relay stopped while draining: %v; lag: %+v", r.Err(), r.Lag())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("relay has not drained the backlog after 10 minutes: %+v", l)
		}
	}
	run.cpu = benchProcessCPU() - cpu
	run.peakRSS = benchPeakRSS("self")
	if samples > 0 {
		run.inFlight = float64(inFlight) / float64(samples)
	}
	r.Cancel()
	<-r.Done()
	return run
}

// benchDrainRelayChild starts a relay in a child process and measures it
// until the slot's confirmed_flush_lsn reaches end. The child is killed
// before it returns.
func benchDrainRelayChild(tb testing.TB, db *pgtest.DB, broker *testBroker, src relay.SourceConfig, end pglogrepl.LSN) benchRelayRun {
	tb.Helper()
	ctx := context.Background()
	admin := db.Pool(tb)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), childEnvOf(broker, src.DSN, src.Slot, "")...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	var run benchRelayRun
	deadline := start.Add(10 * time.Minute)
	for {
		var confirmed string
		err := admin.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = $1`, src.Slot).Scan(&confirmed)
		if err != nil {
			tb.Fatal(err)
		}
		if lsn, err := pglogrepl.ParseLSN(confirmed); err == nil && lsn >= end {
			run.wall = time.Since(start)
			break
		}
		select {
		case err := <-exited:
			tb.Fatalf("relay child exited while draining: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("relay child has not drained the backlog after 10 minutes (confirmed %s)", confirmed)
		}
	}
	run.peakRSS = benchPeakRSS(strconv.Itoa(cmd.Process.Pid))
	cmd.Process.Kill()
	<-exited
	run.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return run
}

// benchResetPeakRSS resets the process's peak RSS (VmHWM), where the kernel
// allows it.
func benchResetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// benchPeakRSS returns the peak RSS in bytes of the process pid ("self" for
// this one), or 0 when unknown.
func benchPeakRSS(pid string) int64 {
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkCommitToBroker measures the latency from a transaction's commit
// to a consumer's receipt of its message, in steady state: one writer
// commits single-row outbox transactions at -c2b.rate per second while the
// relay streams; a consumer on the topic records now − alpes-commit-time
// (Postgres's commit timestamp, same host clock) per message. It includes
// the broker's delivery to the consumer, so it bounds commit → broker from
// above. Metrics: p50, p99 and p99.9 in milliseconds (figure C's
// relay part).
func BenchmarkCommitToBroker(b *testing.B) {
	rate, measured := *benchC2BRate, *benchC2BDuration
	const warmUp = time.Second
	var all []time.Duration
	var written int64
	var writeTime time.Duration
	b.StopTimer()
	for range b.N {
		db := pgtest.New(b, "orders")
		broker := startBroker(b)
		lat := benchConsumeLatencies(b, broker.ServiceURL, broker.topic)
		r := startRelay(b, broker, broker.source(db))
		r.waitState(b, relay.StateStreaming)

		// A production database commits synchronously, and so does this
		// writer, whatever the test cluster's default.
		cfg, err := pgxpool.ParseConfig(db.DSNAs(migrations.ServiceRole("orders")))
		if err != nil {
			b.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
		cfg.MaxConns = 8
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)

		benchWriteAtRate(b, pool, broker.topic, "warm-up", rate, warmUp)
		b.StartTimer()
		start := time.Now()
		w := benchWriteAtRate(b, pool, broker.topic, "measured", rate, measured)
		writeTime += time.Since(start)
		waitFor(b, "every measured message", func() bool { return lat.count("measured") >= w })
		b.StopTimer()
		written += int64(w)
		all = append(all, lat.of("measured")...)
		r.Cancel()
		<-r.Done()
	}
	slices.Sort(all)
	b.ReportMetric(benchMillis(benchQuantile(all, 0.50)), "p50_ms")
	b.ReportMetric(benchMillis(benchQuantile(all, 0.99)), "p99_ms")
	b.ReportMetric(benchMillis(benchQuantile(all, 0.999)), "p99.9_ms")
	b.ReportMetric(benchMillis(all[len(all)-1]), "max_ms")
	b.ReportMetric(float64(written)/writeTime.Seconds(), "written_tx/s")
}

// benchWriteAtRate commits one outbox row per transaction for topic, keyed by phase,
// at rate per second for d, from several connections so that one slow
// commit does not hold the next back. It returns how many it committed.
func benchWriteAtRate(tb testing.TB, pool *pgxpool.Pool, topic, phase string, rate int, d time.Duration) int {
	tb.Helper()
	ctx := context.Background()
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	due := make(chan int, total)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 4 {
		wg.Go(func() {
			for i := range due {
				_, err := pool.Exec(ctx,
					`INSERT INTO outbox (id, topic, aggregate_id, type, payload, headers) VALUES (gen_random_uuid(), $1, $2, 'alpes.test.v1.Probe', $3, $4)`,
					topic, phase, []byte(fmt.Sprintf("%s/%d/%s", phase, i, benchPayload)), benchTraceHeaders)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	start := time.Now()
	for i := range total {
		// Open loop: each row is due at its own time, whether or not the
		// previous ones are done.
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		due <- i
	}
	close(due)
	wg.Wait()
	if err := failed.Load(); err != nil {
		tb.Fatalf("writing %s rows: %v", phase, *err)
	}
	return total
}

// benchLatencies are the commit → receipt latencies a consumer saw, by
// message key.
type benchLatencies struct {
	mu    sync.Mutex
	byKey map[string][]time.Duration
}

func (l *benchLatencies) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey[key])
}

func (l *benchLatencies) of(key string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.byKey[key])
}

// benchConsumeLatencies subscribes to topic and records, for every message,
// the time from its alpes-commit-time to its receipt, until the benchmark
// ends.
func benchConsumeLatencies(tb testing.TB, brokerURL, topic string) *benchLatencies {
	tb.Helper()
	consumer, err := brokertest.NewClient(tb, brokerURL).Subscribe(pulsar.ConsumerOptions{
		Topic:                       topic,
		SubscriptionName:            "bench",
		Type:                        pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		tb.Fatal(err)
	}
	lat := &benchLatencies{byKey: map[string][]time.Duration{}}
	brokertest.Consume(tb, consumer, func(msg pulsar.Message) {
		now := time.Now()
		committed, err := time.Parse(time.RFC3339Nano, msg.Properties()[eventmeta.CommitTime])
		if err != nil {
			return
		}
		lat.mu.Lock()
		defer lat.mu.Unlock()
		lat.byKey[msg.Key()] = append(lat.byKey[msg.Key()], now.Sub(committed))
	})
	return lat
}

// benchQuantile returns the q-quantile of sorted by the nearest-rank method.
func benchQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func benchMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
