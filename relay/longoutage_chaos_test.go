// FAULTS row 5, the long version: the broker is unreachable for minutes.
// It restarts an embedded broker, so it skips on a real-Pulsar run. It takes
// that long, so it runs only with the chaos tag:
//
//	go test -tags chaos -run '^TestBrokerUnreachableForMinutes$' -timeout 30m -v ./relay/
//
// ALPES_CHAOS_OUTAGE sets the length of the outage (a Go duration, default
// 2m). Like TestBrokerOutage it provokes the pulsar-client-go v0.19 race of
// a producer reconnecting mid-send, so it does not build with -race.

//go:build chaos && !race

package relay_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
)

// walCap is the cluster's max_slot_wal_keep_size: the most WAL the slot may
// hold back. The outage must end with the slot well inside it.
const walCap = 512 << 20

// TestBrokerUnreachableForMinutes: a durable broker goes away for minutes
// while rows of 4 KiB keep arriving at a steady rate. All along, the relay
// holds its in-flight bound and its heap does not grow with the backlog, the
// lag it reports rises, and the slot's retained WAL stays under
// max_slot_wal_keep_size (wal_status reserved or extended, never unreserved
// or lost). When the broker is back on its address the relay catches up:
// every event arrives exactly once, in per-key order, and the lag returns to
// zero.
func TestBrokerUnreachableForMinutes(t *testing.T) {
	outage := 2 * time.Minute
	if v := os.Getenv("ALPES_CHAOS_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ALPES_CHAOS_OUTAGE: %v", err)
		}
		outage = d
	}
	ctx := context.Background()
	cluster, adminDSN := ownCluster(t, "orders", fmt.Sprintf("max_slot_wal_keep_size = '%dMB'", walCap>>20))
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	cfg := brokertest.EmbeddedConfig()
	cfg.DataDir = t.TempDir()
	b := brokertest.StartEmbedded(t, cfg)
	// Come back where it was: the relay keeps both addresses.
	cfg.ServiceAddr, cfg.AdminAddr = b.Embedded.Addr().String(), strings.TrimPrefix(b.AdminURL, "http://")
	broker := withTopics(t, b)
	startCounting(t, broker)

	const maxInFlight = 500
	r := startStreamingRelay(t, broker, relay.SourceConfig{
		Name: "orders", DSN: cluster.DSN(migrations.RelayRole, "orders"), MaxInFlight: maxInFlight,
	})
	writer, err := pgxpool.New(ctx, cluster.DSN(migrations.ServiceRole("orders"), "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	w := startSteadyWriter(t, writer, broker.topic, 4, 10*time.Millisecond)
	waitFor(t, "the first events on the broker", func() bool { return brokerMessages(t, broker) >= 20 })

	if err := b.Embedded.Close(); err != nil {
		t.Fatal(err)
	}
	outageStart := time.Now()
	waitFor(t, "the in-flight bound to be reached", func() bool { return lagOf(t, r, "orders").InFlight == maxInFlight })
	baseline := heapAfterGC()
	writtenAtBaseline := w.written()

	var first, last relay.SourceLag
	peakHeap, peakRetained := baseline, int64(0)
	for tick := time.NewTicker(time.Second); time.Since(outageStart) < outage; <-tick.C {
		l := lagOf(t, r, "orders")
		if first.Source == "" {
			first = l
		}
		last = l
		if l.InFlight > maxInFlight {
			t.Fatalf("%d messages in flight, over the bound of %d", l.InFlight, maxInFlight)
		}
		var status string
		var retained, safe int64
		if err := admin.QueryRow(ctx, `SELECT wal_status, pg_current_wal_lsn() - restart_lsn, coalesce(safe_wal_size, -1)
			FROM pg_replication_slots WHERE slot_name = 'alpes_relay_orders'`).Scan(&status, &retained, &safe); err != nil {
			t.Fatal(err)
		}
		if status != "reserved" && status != "extended" {
			t.Fatalf("slot wal_status %s after %s of outage (retained %d bytes)", status, time.Since(outageStart).Round(time.Second), retained)
		}
		if retained >= walCap || safe <= 0 {
			t.Fatalf("slot retains %d bytes, safe_wal_size %d: the cap of %d is reached", retained, safe, walCap)
		}
		if l.WALStatus != "reserved" && l.WALStatus != "extended" {
			t.Errorf("the lag reports wal_status %q, the slot says %s", l.WALStatus, status)
		}
		peakRetained = max(peakRetained, retained)
		if time.Since(outageStart) > outage/2 && l.SafeWALSize == nil {
			t.Errorf("the lag reports no safe_wal_size although max_slot_wal_keep_size is set")
		}
		peakHeap = max(peakHeap, heapAfterGC())
	}
	backlog := w.written() - writtenAtBaseline
	t.Logf("outage %s: %d rows written so far (%d after the bound was reached), %d bytes behind, %.0f s behind, "+
		"heap %d MiB at the bound, peak %d MiB, slot retained at most %d MiB",
		outage, w.written(), backlog, last.BytesBehind, last.SecondsBehind, baseline>>20, peakHeap>>20, peakRetained>>20)

	if last.SecondsBehind < (outage-10*time.Second).Seconds() || last.SecondsBehind <= first.SecondsBehind {
		t.Errorf("lag %.0f s at the start of a %s outage, %.0f s at its end", first.SecondsBehind, outage, last.SecondsBehind)
	}
	if last.BytesBehind <= first.BytesBehind {
		t.Errorf("bytes behind did not rise during the outage: %d, then %d", first.BytesBehind, last.BytesBehind)
	}
	var viaHTTP relay.SourceLag
	if status := getJSON(t, r.http.URL+"/v1/lag/orders", &viaHTTP); status != 200 || viaHTTP.SecondsBehind < last.SecondsBehind {
		t.Errorf("/v1/lag/orders: status %d, %.0f s behind", status, viaHTTP.SecondsBehind)
	}
	// Every row of the backlog carries 4 KiB a relay that buffered it
	// would hold (about 48 MiB at the default pace and outage): allow a
	// quarter of that, and at least 8 MiB for the collector's slack.
	backlogBytes := backlog * rowPadding
	if grown := peakHeap - baseline; grown > max(8<<20, backlogBytes/4) {
		t.Errorf("heap grew by %d MiB while %d rows (%d MiB) waited in the WAL", grown>>20, backlog, backlogBytes>>20)
	}

	b = brokertest.StartEmbedded(t, cfg)
	ids := w.stop()
	caughtUp := time.Now()
	// Subscribed only now, from the start, so that it reads each message
	// the broker holds once: a consumer connected across the outage would
	// also get again the messages whose acknowledgements the broker had not
	// recorded when it went away (delivery is at least once).
	rec := consume(t, broker.ServiceURL, broker.topic)
	pgtest.WaitFor(t, 10*time.Minute, fmt.Sprintf("%d events", len(ids)), func() bool {
		distinct, _ := rec.count()
		return distinct >= len(ids)
	})
	waitFor(t, "the lag back to zero", func() bool {
		l := lagOf(t, r, "orders")
		return l.SecondsBehind == 0 && l.InFlight == 0
	})
	t.Logf("caught up with %d events in %s", len(ids), time.Since(caughtUp).Round(time.Second))
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
}

// heapAfterGC returns the live heap after a collection.
func heapAfterGC() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// rowPadding is the size of the random headers of the steady writer's rows:
// they make each row weigh what a real event might, in the WAL and in the
// relay, without changing the payloads the order checks read.
const rowPadding = 4096

// steadyWriter inserts outbox rows at a steady pace, round robin over its
// keys, each key's payloads numbered as insertEvents does.
type steadyWriter struct {
	quit chan struct{} // closed by stop
	done chan struct{} // closed when the writer has returned
	mu   sync.Mutex
	ids  []string
}

// startSteadyWriter inserts a row for topic every interval until stop. An insert is
// never cut short, so the ids are exactly the rows in the outbox.
func startSteadyWriter(t *testing.T, pool *pgxpool.Pool, topic string, keys int, every time.Duration) *steadyWriter {
	w := &steadyWriter{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every) // pacing the load, not synchronising
		defer tick.Stop()
		next := make([]int, keys)
		padding := make([]byte, rowPadding/2)
		for i := 0; ; i++ {
			select {
			case <-w.quit:
				return
			case <-tick.C:
			}
			k := i % keys
			key := fmt.Sprintf("order-%d", k)
			id := uuid.NewString()
			rand.Read(padding) // random: the headers must not compress
			headers := fmt.Sprintf(`{"padding": "%x"}`, padding)
			if _, err := pool.Exec(context.Background(),
				`INSERT INTO outbox (id, topic, aggregate_id, type, payload, headers) VALUES ($1, $2, $3, 'alpes.test.v1.Probe', $4, $5)`,
				id, topic, key, []byte(fmt.Sprintf("%s/%d", key, next[k])), headers); err != nil {
				t.Errorf("inserting event %d for %s: %v", next[k], key, err)
				return
			}
			next[k]++
			w.mu.Lock()
			w.ids = append(w.ids, id)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *steadyWriter) written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(len(w.ids))
}

// stop stops the writer and returns the ids of every row it inserted.
func (w *steadyWriter) stop() []string {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids
}
