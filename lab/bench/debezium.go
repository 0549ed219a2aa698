package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Debezium Server is B's third CDC peer (figure B‴): the Postgres connector
// on a slot and a publication of its own on the orders database, the
// outbox event router mapped to alpes's outbox columns, and the Pulsar sink
// publishing into the stack's broker process, on a topic of its own per
// run in the drain's namespace, so that the relay's topics and their
// deduplication state are left alone.
const (
	debeziumPublication = "alpes_bench_debezium"
	debeziumProducer    = "alpes-bench-debezium"
	debeziumDrainWait   = 10 * time.Minute
	debeziumFirstWait   = 3 * time.Minute // from exec to the first message
)

// DebeziumDrain is one drain of the backlog by Debezium Server: from exec
// of its JVM until a reader in the bench process has every message.
type DebeziumDrain struct {
	DrainTiming
	// Topic is where it published; Received how many messages the reader
	// counted there (the run fails below the backlog).
	Topic    string `json:"topic"`
	Received int64  `json:"received"`
	// FirstMessageMillis is from exec to the reader's first message: the
	// JVM's start, Quarkus's, the connector's and the sink's. FromFirst is
	// the rate counted from then, and StreamCPU the JVM's CPU from then
	// per remaining transaction.
	FirstMessageMillis float64 `json:"first_message_ms"`
	FromFirst          float64 `json:"from_first_tx_per_s"`
	StreamCPU          float64 `json:"streaming_cpu_us_per_tx"`
	// CPUSeconds is the JVM's CPU time until the last message;
	// PeakRSSMiB its peak resident set (VmHWM).
	CPUSeconds float64 `json:"jvm_cpu_s"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// SampleKey and SampleProperties are the first message's key and
	// properties, to show what the event router made of a row.
	SampleKey        string            `json:"sample_key"`
	SampleProperties map[string]string `json:"sample_properties"`
}

// prepareDebezium makes ready, before the backlog is written, what
// Debezium Server will read: its publication on the orders outbox (once
// per stack) and its slot, created where the other drains' are. It returns
// the slot, which drop removes, or why Debezium is not measured in this run.
func (r *runner) prepareDebezium(ctx context.Context, sys *system, run int) (slot string, err error) {
	if _, err := r.debeziumDistribution(ctx); err != nil {
		return "", err
	}
	orders := sys.admin[drainSource]
	var exists bool
	if err := orders.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)`, debeziumPublication).Scan(&exists); err != nil {
		return "", fmt.Errorf("reading publications: %w", err)
	}
	if !exists {
		q := fmt.Sprintf(`CREATE PUBLICATION %s FOR TABLE %s WITH (publish = 'insert')`,
			pgx.Identifier{debeziumPublication}.Sanitize(), pgx.Identifier{schema.OutboxTable}.Sanitize())
		if _, err := orders.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("creating Debezium's publication: %w", err)
		}
	}
	slot = fmt.Sprintf("bench_debezium_%d", run)
	if _, err := orders.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
		return "", fmt.Errorf("creating Debezium's slot %s: %w", slot, err)
	}
	return slot, nil
}

// debeziumTopic is the local name of the topic Debezium publishes run's
// backlog to: the event router maps the rows' topic column to it.
func debeziumTopic(run int) string {
	return fmt.Sprintf("debezium.r%d.%s", run, benchDrainTopic[strings.LastIndexByte(benchDrainTopic, '/')+1:])
}

// debeziumProperties is Debezium Server's configuration for one drain
// (docs/performance.md, "Debezium Server beside the relay (B‴)", says why
// each is set). Pairs of key and value, in the order written.
func debeziumProperties(sys *system, dir, slot string, run, httpPort int) [][2]string {
	host, port, _ := net.SplitHostPort(sys.Cluster.Addr())
	return [][2]string{
		// The sink: the stack's broker process, the drain's namespace.
		{"debezium.sink.type", "pulsar"},
		{"debezium.sink.pulsar.client.serviceUrl", sys.BrokerURL},
		{"debezium.sink.pulsar.tenant", eventcatalog.DefaultTenant},
		{"debezium.sink.pulsar.namespace", benchNamespace[strings.IndexByte(benchNamespace, '/')+1:]},
		{"debezium.sink.pulsar.producer.producerName", debeziumProducer},
		{"debezium.sink.pulsar.producer.batchingEnabled", "false"},
		{"debezium.sink.pulsar.producer.blockIfQueueFull", "true"},
		// Keys as plain strings, payloads as the bytes of the bytea column.
		{"debezium.format.key", "simplestring"},
		{"debezium.format.value", "binary"},
		{"debezium.format.header", "json"},
		{"debezium.format.header.schemas.enable", "false"},
		// The source: the orders database, its outbox only, on a slot and a
		// publication of its own, from the slot's position, no snapshot.
		{"debezium.source.connector.class", "io.debezium.connector.postgresql.PostgresConnector"},
		{"debezium.source.offset.storage.file.filename", filepath.Join(dir, "offsets.dat")},
		{"debezium.source.offset.flush.interval.ms", "0"},
		{"debezium.source.database.hostname", host},
		{"debezium.source.database.port", port},
		{"debezium.source.database.user", pgcluster.Superuser},
		{"debezium.source.database.password", "unused"}, // the cluster trusts loopback
		{"debezium.source.database.dbname", drainSource},
		{"debezium.source.topic.prefix", "alpes-bench"},
		{"debezium.source.plugin.name", "pgoutput"},
		{"debezium.source.slot.name", slot},
		{"debezium.source.publication.name", debeziumPublication},
		{"debezium.source.publication.autocreate.mode", "disabled"},
		{"debezium.source.table.include.list", "public." + schema.OutboxTable},
		{"debezium.source.snapshot.mode", "no_data"},
		{"debezium.source.poll.interval.ms", "10"},
		// The relay's heartbeats are logical decoding messages in the same
		// WAL; they are not outbox rows, and the binary format cannot carry
		// them.
		{"debezium.source.message.prefix.exclude.list", ".*"},
		// The outbox event router on alpes's columns.
		{"debezium.transforms", "outbox"},
		{"debezium.transforms.outbox.type", "io.debezium.transforms.outbox.EventRouter"},
		{"debezium.transforms.outbox.table.field.event.id", "id"},
		{"debezium.transforms.outbox.table.field.event.key", "aggregate_id"},
		{"debezium.transforms.outbox.table.field.event.payload", "payload"},
		{"debezium.transforms.outbox.table.fields.additional.placement",
			"type:header:" + eventmeta.Type + ",schema_version:header:" + eventmeta.SchemaVersion + ",headers:header:headers"},
		{"debezium.transforms.outbox.route.by.field", "topic"},
		{"debezium.transforms.outbox.route.topic.regex", "(?:.*/)?([^/]+)"},
		{"debezium.transforms.outbox.route.topic.replacement", fmt.Sprintf("debezium.r%d.$1", run)},
		// Quarkus: its HTTP server (health) on a free port, plain logs.
		{"quarkus.http.port", strconv.Itoa(httpPort)},
		{"quarkus.log.console.json", "false"},
		{"quarkus.banner.enabled", "false"},
	}
}

// drainDebezium starts Debezium Server on slot and times it until a reader
// on its topic has all n messages of the backlog; then it stops it. Its
// files (configuration, offsets, log) are in a directory of its own.
func (r *runner) drainDebezium(ctx context.Context, sys *system, slot string, run, n int) (*DebeziumDrain, error) {
	dist, err := r.debeziumDistribution(ctx)
	if err != nil {
		return nil, err
	}
	java, err := pulsarstandalone.JavaPath()
	if err != nil {
		return nil, err
	}
	// Its own directory, removed after a drain that worked; a failed one
	// keeps it, with the log the error points to.
	dir, err := os.MkdirTemp("", fmt.Sprintf("alpes-bench-debezium-%d-", run))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if ok {
			os.RemoveAll(dir)
		}
	}()
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	var props strings.Builder
	for _, kv := range debeziumProperties(sys, dir, slot, run, httpPort) {
		fmt.Fprintf(&props, "%s=%s\n", kv[0], kv[1])
	}
	if err := os.WriteFile(filepath.Join(conf, "application.properties"), []byte(props.String()), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "debezium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	// The reader waits on the topic before Debezium starts, from its
	// earliest message.
	d := &DebeziumDrain{Topic: "persistent://" + benchNamespace + "/" + debeziumTopic(run)}
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: sys.BrokerURL, Logger: pulsarslog.New(slog.New(slog.DiscardHandler))})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: d.Topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.Topic, err)
	}
	defer reader.Close()

	// As run.sh starts it, without the script: the JVM is the child, so
	// that /proc tells its CPU and memory.
	cmd := exec.Command(java, "-cp",
		strings.Join([]string{dist.runner(), conf, filepath.Join(dist.Dir, "lib", "*")}, string(os.PathListSeparator)),
		"io.debezium.server.Main")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logFile, logFile
	before := sys.usage(ctx)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting Debezium Server: %w", err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	defer stop()

	readCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	readCtx, cancelWait := context.WithTimeout(readCtx, debeziumDrainWait)
	defer cancelWait()
	firstSeen := make(chan struct{}) // from then on the log needs no reading
	go func(seen <-chan struct{}) {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		scan := tick.C
		for {
			select {
			case <-exited:
				cancel(errors.New("Debezium Server exited"))
				return
			case <-readCtx.Done():
				return
			case <-seen:
				seen, scan = nil, nil
			case <-scan:
				if err := debeziumClientBroken(logPath); err != nil {
					cancel(err)
					return
				}
			}
		}
	}(firstSeen)
	var firstCPU time.Duration
	for d.Received < int64(n) {
		next := readCtx
		if d.Received == 0 { // a JVM that publishes nothing for minutes will not
			var cancelFirst context.CancelFunc
			next, cancelFirst = context.WithTimeout(readCtx, debeziumFirstWait)
			defer cancelFirst()
		}
		msg, err := reader.Next(next)
		if err != nil {
			break
		}
		d.Received++
		if d.Received == 1 {
			d.FirstMessageMillis = millis(time.Since(start))
			firstCPU, _ = pidUsage(cmd.Process.Pid)
			d.SampleKey, d.SampleProperties = msg.Key(), msg.Properties()
			close(firstSeen)
		}
	}
	wall := time.Since(start)
	cpu, rss := pidUsage(cmd.Process.Pid)
	after := sys.usage(ctx)
	select {
	case <-exited:
		return d, fmt.Errorf("Debezium Server exited after %d of %d messages: %v: %s", d.Received, n, exitErr, debeziumLogReason(logPath))
	default:
	}
	if err := context.Cause(readCtx); d.Received < int64(n) && errors.Is(err, errDebeziumClient) {
		ok = true // the reason is known and whole: no log to keep
		return d, err
	}
	if d.Received < int64(n) {
		return d, fmt.Errorf("Debezium Server published %d of %d messages to %s in %s: %s", d.Received, n, d.Topic, wall.Round(time.Second), debeziumLogReason(logPath))
	}
	stop()
	ok = true

	d.DrainTiming = timing(before, after, wall, n)
	delete(d.CPUMicros, "relay")
	delete(d.CPUMicros, componentLoad)
	d.CPUMicros["debezium"] = micros(cpu) / float64(n)
	d.CPUSeconds = cpu.Seconds()
	d.PeakRSSMiB = float64(rss) / (1 << 20)
	if rest := wall.Seconds() - d.FirstMessageMillis/1000; rest > 0 && n > 1 {
		d.FromFirst = float64(n-1) / rest
		d.StreamCPU = micros(cpu-firstCPU) / float64(n-1)
	}
	return d, nil
}

// freePort returns a TCP port on loopback that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// debeziumLogReason is the last ERROR line of Debezium's log, else its last
// line, for a one-line error; the log itself stays in the stack's directory.
func debeziumLogReason(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], " ERROR ") {
			return "log: " + strings.TrimSpace(lines[i])
		}
	}
	return "log: " + strings.TrimSpace(lines[len(lines)-1]) + " (" + path + ")"
}

// debeziumNotMeasured is why Debezium was not measured, in one line.
func debeziumNotMeasured(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// debeziumClientBroken reads Debezium's log for the one failure that never
// heals by retrying: its Pulsar client (Java) rejecting the broker's answer
// to its producer because a field it requires is missing. The embedded
// broker omits schema_version in PRODUCER_SUCCESS for a producer without a
// schema, which pulsar-client-go accepts and the Java client does not.
func debeziumClientBroken(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	const marker = "IllegalStateException: Field '"
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return nil
	}
	field, _, _ := strings.Cut(string(b[i+len(marker):]), "'")
	if !bytes.Contains(b, []byte("handleProducerSuccess")) {
		return fmt.Errorf("%w: it rejects an answer of the broker: field %q is not set", errDebeziumClient, field)
	}
	return fmt.Errorf("%w: it cannot create its producer: the broker's PRODUCER_SUCCESS has no %s, which the Java client requires (Apache Pulsar always sets it)", errDebeziumClient, field)
}

// errDebeziumClient is Debezium Server's Pulsar client failing for good.
var errDebeziumClient = errors.New("Debezium Server's Pulsar client (Java) cannot work with this broker")
