package broker_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker"
)

// The durability promise: a receipt means the message is on disk. These
// tests break the disk rather than the process: a storage layer that fails
// writes and syncs, and forgets on a power loss whatever was not synced.
// They need control of the broker's storage, so they run on ours only.

// faultyBroker starts a durable broker on dir whose topic logs live in fs.
func faultyBroker(t *testing.T, dir string, fs *broker.FaultFS) (*broker.Broker, pulsar.Client) {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.WithStorage(durableConfig(dir), fs))
	if err != nil {
		t.Fatal(err)
	}
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.ServiceURL(), Logger: quietLogger, OperationTimeout: receiveTimeout})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	return b, c
}

// powerLoss stops b and c as a power cut would, and forgets what fs had
// not made durable.
func powerLoss(b *broker.Broker, c pulsar.Client, fs *broker.FaultFS) {
	b.Crash()
	c.Close()
	fs.PowerLoss()
}

// readAll reads every message of topic from the start.
func readAll(t *testing.T, c pulsar.Client, topic string) []string {
	t.Helper()
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.HasNext() {
		ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Payload()))
	}
	return out
}

func writer(t *testing.T, c pulsar.Client, topic string) pulsar.Producer {
	t.Helper()
	return producer(t, c, pulsar.ProducerOptions{Topic: topic, Name: "writer", DisableBatching: true})
}

func TestReceiptedMessagesSurviveAPowerLoss(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	dir, fs, tp := t.TempDir(), broker.NewFaultFS(), "persistent://public/default/power-loss"
	b, c := faultyBroker(t, dir, fs)
	send(t, writer(t, c, tp), payloads("m", 20)...)
	powerLoss(b, c, fs)

	b, c = faultyBroker(t, dir, fs)
	defer b.Close()
	defer c.Close()
	if got := readAll(t, c, tp); len(got) != 20 {
		t.Fatalf("after a power loss the topic holds %d of the 20 receipted messages: %q", len(got), got)
	}
}

// A failed fsync cannot be retried as if nothing happened: the pages it
// failed to write are no longer dirty, so the next sync skips them. The
// broker must neither receipt the message nor remember its sequence id;
// the client sends it again, and that copy is the one on disk.
func TestAFailedSyncIsNeverTakenForDurable(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	dir, fs, tp := t.TempDir(), broker.NewFaultFS(), "persistent://public/default/failed-sync"
	b, c := faultyBroker(t, dir, fs)
	p := writer(t, c, tp)
	send(t, p, payloads("before-", 3)...)
	fs.FailSyncs(1)
	ids := send(t, p, &pulsar.ProducerMessage{Payload: []byte("during")})
	if fs.SyncErrors() != 1 {
		t.Fatalf("%d syncs failed, want 1", fs.SyncErrors())
	}
	if ids[0].EntryID() < 0 {
		t.Errorf("the message was receipted as a duplicate (%v) of a copy that never reached the disk", ids[0])
	}
	powerLoss(b, c, fs)

	b, c = faultyBroker(t, dir, fs)
	defer b.Close()
	defer c.Close()
	if got, want := readAll(t, c, tp), []string{"before-0", "before-1", "before-2", "during"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after a failed sync and a power loss the topic holds %q, want %q", got, want)
	}
}

// A write that fails half-way is refused; the client sends the message
// again, and it is stored once.
func TestAFailedWriteIsSentAgainAndStoredOnce(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	dir, fs, tp := t.TempDir(), broker.NewFaultFS(), "persistent://public/default/failed-write"
	b, c := faultyBroker(t, dir, fs)
	p := writer(t, c, tp)
	send(t, p, payloads("before-", 2)...)
	fs.FailWrites(1)
	send(t, p, &pulsar.ProducerMessage{Payload: []byte("during")})
	powerLoss(b, c, fs)

	b, c = faultyBroker(t, dir, fs)
	defer b.Close()
	defer c.Close()
	if got, want := readAll(t, c, tp), []string{"before-0", "before-1", "during"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after a failed write the topic holds %q, want %q", got, want)
	}
}

// A crash can leave the last record of a log cut short, or space the file
// system allocated but never filled: recovery cuts it off, says so, and
// keeps every whole record.
func TestRecoveryTruncatesATornTailAndSaysSo(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	for name, tail := range map[string][]byte{
		"a record cut short": {0, 0, 0, 100, 1, 2, 3, 4, 'p', 'a', 'r', 't'},
		"zeros":              make([]byte, 4096),
	} {
		t.Run(name, func(t *testing.T) {
			dir, tp := t.TempDir(), "persistent://public/default/torn"
			writeAndClose(t, dir, tp, 5)
			log := logOf(t, dir)
			whole := fileSize(t, log)
			appendTo(t, log, tail)

			var logs syncBuffer
			cfg := durableConfig(dir)
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			b, err := broker.Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c := (&env{serviceURL: b.ServiceURL()}).client(t)
			if got := readAll(t, c, tp); len(got) != 5 {
				t.Errorf("recovered %d of 5 messages", len(got))
			}
			if size := fileSize(t, log); size != whole {
				t.Errorf("the log is %d bytes after recovery, want %d", size, whole)
			}
			if !strings.Contains(logs.String(), "truncated the torn tail") {
				t.Errorf("recovery did not say it truncated the log:\n%s", logs.String())
			}
		})
	}
}

// Damage with whole records after it is not a crash's doing: cutting the
// log there would throw away receipted messages, so the broker refuses to
// start and says where.
func TestRecoveryRefusesACorruptRecordInTheMiddle(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	dir, tp := t.TempDir(), "persistent://public/default/corrupt"
	writeAndClose(t, dir, tp, 5)
	log := logOf(t, dir)
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff // inside the third record of five
	if err := os.WriteFile(log, data, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(context.Background(), durableConfig(dir))
	if err == nil {
		b.Close()
		t.Fatal("the broker started on a log corrupt in the middle")
	}
	if !strings.Contains(err.Error(), "corrupt record in the middle") {
		t.Errorf("the error does not say what is wrong: %v", err)
	}
	if size := fileSize(t, log); size != int64(len(data)) {
		t.Errorf("the refused log was changed: %d bytes, was %d", size, len(data))
	}
}

// writeAndClose stores n messages on topic in a durable broker on dir and
// stops it cleanly.
func writeAndClose(t *testing.T, dir, topic string, n int) {
	t.Helper()
	withBroker(t, dir, false, func(_ *env, c pulsar.Client) {
		p := producer(t, c, pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
		send(t, p, payloads("m", n)...)
		p.Close()
	})
}

// logOf is the path of the only topic log under dir.
func logOf(t *testing.T, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "topics", "*", "log"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("topic logs under %s: %v, %v", dir, logs, err)
	}
	return logs[0]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func appendTo(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for the broker's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
