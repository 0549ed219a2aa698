package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/broker"
)

func durableConfig(dir string) broker.Config {
	cfg := testConfig()
	cfg.DataDir = dir
	return cfg
}

// withBroker starts a durable broker on dir, runs fn against it, then
// stops it cleanly or, with crash, as a killed process would stop.
func withBroker(t *testing.T, dir string, crash bool, fn func(e *env, c pulsar.Client)) {
	t.Helper()
	b, err := broker.Start(context.Background(), durableConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{serviceURL: b.ServiceURL(), adminURL: b.AdminURL(), broker: b}
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: e.serviceURL, Logger: quietLogger, OperationTimeout: receiveTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if crash {
			b.Crash()
			c.Close()
			return
		}
		c.Close()
		b.Close()
	}()
	fn(e, c)
}

func TestDurableRestartKeepsMessagesCursorsDedupAndSchemas(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	dir := t.TempDir()
	tp := "persistent://public/default/durable"
	schema := pulsar.NewProtoNativeSchemaWithMessage(&timestamppb.Timestamp{}, nil)
	var schemaVersion []byte

	withBroker(t, dir, false, func(e *env, c pulsar.Client) {
		cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", AckWithResponse: true})
		p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "relay", Schema: schema, DisableBatching: true})
		for i := range 10 {
			seq := int64(i)
			send(t, p, &pulsar.ProducerMessage{Value: timestamppb.New(timestampOf(i)), SequenceID: &seq})
		}
		for range 4 {
			m := receive(t, cs)
			schemaVersion = m.SchemaVersion()
			if err := cs.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		p.Close()
		cs.Close()
	})

	// Restart: the cursor resumes after the 4 acknowledged messages, the
	// producer name's sequence ids are still known, the schema version too.
	withBroker(t, dir, true, func(e *env, c pulsar.Client) {
		cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Schema: schema})
		p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "relay", Schema: schema, DisableBatching: true})
		seq := int64(9)
		if ids := send(t, p, &pulsar.ProducerMessage{Value: timestamppb.New(timestampOf(9)), SequenceID: &seq}); ids[0].EntryID() != -1 {
			t.Fatalf("resent sequence id 9 was stored again as %v", ids[0])
		}
		for i := 4; i < 10; i++ {
			m := receive(t, cs)
			var ts timestamppb.Timestamp
			if err := m.GetSchemaValue(&ts); err != nil {
				t.Fatal(err)
			}
			if !ts.AsTime().Equal(timestampOf(i)) {
				t.Fatalf("message %d: %v", i, ts.AsTime())
			}
			if string(m.SchemaVersion()) != string(schemaVersion) {
				t.Fatalf("schema version %x after restart, was %x", m.SchemaVersion(), schemaVersion)
			}
		}
		seq = 10
		send(t, p, &pulsar.ProducerMessage{Value: timestamppb.New(timestampOf(10)), SequenceID: &seq})
		// Crash now: message 10 was receipted, so it must survive.
	})

	// Torn write at the log's tail, as a crash in the middle of an append
	// leaves it: recovery drops it and keeps every whole record.
	logs, _ := filepath.Glob(filepath.Join(dir, "topics", "*", "log"))
	if len(logs) != 1 {
		t.Fatalf("topic logs %v", logs)
	}
	f, err := os.OpenFile(logs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 1, 0, 0xde, 0xad})
	f.Close()

	withBroker(t, dir, false, func(e *env, c pulsar.Client) {
		r := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.EarliestMessageID()})
		n := 0
		for r.HasNext() {
			next(t, r)
			n++
		}
		if n != 11 {
			t.Fatalf("after crash and torn tail the topic holds %d messages, want 11", n)
		}
	})
}

func timestampOf(i int) time.Time { return time.Unix(1700000000+int64(i), 0).UTC() }

// TestDurableBigBacklogBoundedMemory publishes a backlog much larger than
// what the broker keeps in memory, then consumes it all from disk. It does
// not run in parallel: it measures the process's heap.
func TestDurableBigBacklogBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := startBroker(t, durableConfig(t.TempDir()))
	c := e.client(t)
	tp := topic(t)
	const n, size = 100_000, 1024
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", ReceiverQueueSize: 1000})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, BatchingMaxMessages: 100})
	payload := make([]byte, size)
	ctx := t.Context()
	for i := range n {
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload, Properties: map[string]string{"i": itoa(i)}},
			func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					t.Errorf("send: %v", err)
				}
			})
	}
	if err := p.FlushWithCtx(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// 100 MiB went through; the broker keeps an index and a small tail.
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d MiB while publishing the backlog", grown>>20)
	if grown > 40<<20 {
		t.Fatalf("heap grew by %d MiB with a 100 MiB backlog", grown>>20)
	}
	for i := range n {
		m := receive(t, cs)
		if m.Properties()["i"] != itoa(i) {
			t.Fatalf("message %d has index %s", i, m.Properties()["i"])
		}
		cs.Ack(m)
	}
}

func TestDurableRestartKeepsAdminState(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	dir := t.TempDir()
	partitioned := "persistent://public/default/orders"
	gone := "persistent://public/default/gone"
	withBroker(t, dir, false, func(e *env, c pulsar.Client) {
		for _, call := range []struct{ method, path, body string }{
			{"PUT", adminPath(partitioned) + "/partitions", "4"},
			{"PUT", "/admin/v2/namespaces/public/created", ""},
			{"POST", "/admin/v2/namespaces/public/default/deduplication", "false"},
			{"PUT", adminPath(gone), ""},
			{"DELETE", adminPath(gone), ""},
		} {
			if code := e.admin(t, call.method, call.path, call.body, nil); code != 204 {
				t.Fatalf("%s %s: %d", call.method, call.path, code)
			}
		}
	})
	withBroker(t, dir, true, func(e *env, c pulsar.Client) {
		var meta struct{ Partitions int }
		e.admin(t, "GET", adminPath(partitioned)+"/partitions", "", &meta)
		var on *bool
		e.admin(t, "GET", "/admin/v2/namespaces/public/default/deduplication", "", &on)
		if meta.Partitions != 4 || on == nil || *on {
			t.Fatalf("after restart: %d partitions, deduplication policy %v", meta.Partitions, on)
		}
		var namespaces []string
		e.admin(t, "GET", "/admin/v2/namespaces/public", "", &namespaces)
		if !slices.Contains(namespaces, "public/created") {
			t.Fatalf("after restart the namespaces are %v", namespaces)
		}
		if code := e.admin(t, "GET", adminPath(gone)+"/stats", "", nil); code != 404 {
			t.Fatalf("deleted topic came back: %d", code)
		}
	})
}
