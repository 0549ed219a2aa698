package relay_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay"
)

// TestBrokerPartitionAndLostReceipts covers FAULTS row 6. The relay reaches
// the broker only through a fault proxy (a Pulsar-aware one, which keeps
// clients on it after their lookups, so it runs on real Pulsar too). Mid-stream the proxy first drops every reply, so messages reach
// the broker but their receipts are lost, then cuts the link both ways (a
// partition TCP has not noticed), then drops replies again, switching while
// rows are being sent. Throughout, a sampler records the
// position the relay confirms and, after it, how many messages the broker
// holds; afterwards every sample is checked against the broker's log (I1).
// Healed, every event is in the broker exactly once and in per-key order, the
// resends after the lost receipts absorbed by deduplication (I2).
func TestBrokerPartitionAndLostReceipts(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker, viaProxy, proxy := startBrokerBehindProxy(t)
	startCounting(t, broker)
	src := viaProxy.source(db)
	src.StatusInterval = 100 * time.Millisecond
	r := startStreamingRelay(t, viaProxy, src)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))
	admin := db.Pool(t)

	samples := sampleConfirmations(t, r, admin, db.Name, broker)

	const keys, perPhase = 4, 10
	var ids []string
	next := 0 // per-key index of the next row
	write := func() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for k := range keys {
			wg.Go(func() {
				got := insertEvents(ctx, t, writer, broker.topic, fmt.Sprintf("order-%d", k), next, perPhase)
				mu.Lock()
				ids = append(ids, got...)
				mu.Unlock()
			})
		}
		wg.Wait()
		next += perPhase
	}
	caughtUp := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool {
			l := lagOf(t, r, "orders")
			return l.State == relay.StateStreaming && l.InFlight == 0 && l.SecondsBehind == 0 &&
				brokerMessages(t, broker) >= int64(len(ids))
		})
	}

	write()
	caughtUp("the first rows published and confirmed")

	// Receipts lost: the messages reach the broker, the relay hears nothing.
	// Each lane's producer sends one entry and gathers the rest of its
	// messages until that entry's receipt (docs/adr/0008), so the broker
	// holds a first entry per lane, and the relay has every row published.
	published := lagOf(t, r, "orders").MessagesPublished
	stored := brokerMessages(t, broker)
	if err := proxy.SetMode(faultproxy.DropReplies); err != nil {
		t.Fatal(err)
	}
	write()
	waitFor(t, "the broker to store rows whose receipts are lost", func() bool {
		return brokerMessages(t, broker) > stored
	})
	waitUnreceipted(t, r, admin, keys*perPhase)
	if l := lagOf(t, r, "orders"); l.MessagesPublished != published {
		t.Fatalf("%d receipts counted while every reply was dropped", l.MessagesPublished-published)
	}
	// The connection's byte stream lost frames: it cannot carry on. Reset it,
	// as TCP or the client eventually would, and let the relay reconnect.
	if err := proxy.SetMode(faultproxy.Reset); err != nil {
		t.Fatal(err)
	}
	lost := brokerMessages(t, broker) - stored // final: the relay's link is gone
	if err := proxy.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	caughtUp("the relay to catch up after the lost receipts")
	waitFor(t, fmt.Sprintf("the %d resent messages to be dropped as duplicates", lost), func() bool {
		return lagOf(t, r, "orders").DuplicatesDropped >= lost
	})

	// A partition: nothing crosses in either direction until it heals.
	stored = brokerMessages(t, broker)
	if err := proxy.SetMode(faultproxy.Blackhole); err != nil {
		t.Fatal(err)
	}
	write()
	waitUnreceipted(t, r, admin, keys*perPhase)
	if n := brokerMessages(t, broker); n != stored {
		t.Fatalf("the broker stored %d messages through the partition", n-stored)
	}
	if err := proxy.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	write()
	caughtUp("the relay to catch up after the partition")

	// Receipts lost again, the switch landing while rows stream.
	stored = brokerMessages(t, broker)
	published = lagOf(t, r, "orders").MessagesPublished
	writing := make(chan struct{})
	go func() { defer close(writing); write() }()
	waitFor(t, "the first rows of the batch on the broker", func() bool { return brokerMessages(t, broker) > stored })
	if err := proxy.SetMode(faultproxy.DropReplies); err != nil {
		t.Fatal(err)
	}
	<-writing
	waitFor(t, "every row of the batch receipted or awaiting its receipt", func() bool {
		l := lagOf(t, r, "orders")
		return l.MessagesPublished-published+l.InFlight == keys*perPhase
	})
	if err := proxy.SetMode(faultproxy.Reset); err != nil {
		t.Fatal(err)
	}
	if err := proxy.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	caughtUp("the relay to catch up after receipts lost mid-stream")

	samples.stop()
	rec := consume(t, broker.ServiceURL, broker.topic)
	waitFor(t, fmt.Sprintf("%d events", len(ids)), func() bool { _, n := rec.count(); return n >= len(ids) })
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
	samples.check(t, rec)
	if n := brokerMessages(t, broker); n != int64(len(ids)) {
		t.Errorf("the broker stored %d messages for %d events", n, len(ids))
	}
}

// waitUnreceipted waits until n messages await receipts and the newest row
// is two seconds old, time for the relay to confirm wrongly if it would
// (its status interval is 100 ms), and checks that the lag shows them.
func waitUnreceipted(t *testing.T, r *runningRelay, admin *pgxpool.Pool, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages awaiting receipts for 2 s", n), func() bool {
		var old bool
		err := admin.QueryRow(context.Background(), `SELECT now() - max(created_at) > interval '2 seconds' FROM outbox`).Scan(&old)
		return err == nil && old && lagOf(t, r, "orders").InFlight == n
	})
	if l := lagOf(t, r, "orders"); l.SecondsBehind < 2 || l.BytesBehind == 0 {
		t.Errorf("with %d messages unreceipted for 2 s the lag shows %.1f s, %d bytes behind", n, l.SecondsBehind, l.BytesBehind)
	}
}

// startBrokerBehindProxy returns the test's broker, the same broker as a
// relay reaches it through a Pulsar-aware fault proxy (the service URL is
// the proxy's; the admin API is reached directly), and the proxy.
func startBrokerBehindProxy(t *testing.T) (broker, viaProxy *testBroker, proxy *faultproxy.Proxy) {
	t.Helper()
	broker = startBroker(t)
	// Registered after the broker's cleanup, so it runs first: clients'
	// connections go before the broker.
	proxy = faultproxy.NewPulsar(t, strings.TrimPrefix(broker.ServiceURL, "pulsar://"))
	via := *broker
	via.Broker = &brokertest.Broker{ServiceURL: "pulsar://" + proxy.Addr(), AdminURL: broker.AdminURL, Embedded: broker.Embedded}
	return broker, &via, proxy
}

// countingSub is a subscription that keeps everything stored on a test's
// topic, for storedMessages to count. (Topic stats will not do: their
// msgInCounter counts the duplicates real Pulsar drops, and a backlog counts
// entries, of which a batch is one.)
const countingSub = "count"

// startCounting creates the test topic with a subscription from its start,
// which keeps every message stored.
func startCounting(t testing.TB, b *testBroker) {
	t.Helper()
	b.counter = brokertest.NewClient(t, b.ServiceURL)
	path := adminPath(b.topic)
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPut, path, ""},
		{http.MethodPut, path + "/subscription/" + countingSub, `{"ledgerId": -1, "entryId": -1}`},
	} {
		r, err := http.NewRequest(req.method, b.AdminURL+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", req.method, req.path, resp.StatusCode, body)
		}
	}
}

// adminPath is the admin API's path of topic: /admin/v2/persistent/t/ns/name.
func adminPath(topic string) string {
	return "/admin/v2/persistent/" + strings.TrimPrefix(topic, "persistent://")
}

// brokerMessages returns how many messages the broker has stored on the
// test topic (see startCounting), reading the topic from its start, not
// through the proxy.
func brokerMessages(t testing.TB, b *testBroker) int64 {
	t.Helper()
	n, err := storedMessages(b)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func storedMessages(b *testBroker) (int64, error) {
	reader, err := b.counter.CreateReader(pulsar.ReaderOptions{Topic: b.topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		return 0, err
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	for reader.HasNext() {
		if _, err := reader.Next(ctx); err != nil {
			return 0, fmt.Errorf("reading the topic after %d messages: %w", n, err)
		}
		n++
	}
	return n, nil
}

// confirmationSample is one observation of I1: confirmed was read first,
// then stored, the count of messages the broker held. Since the broker
// only appends, every message of every transaction that committed before
// confirmed must be among the first stored messages of the topic.
type confirmationSample struct {
	at        time.Time
	confirmed pglogrepl.LSN // the newer of the relay's and the slot's
	stored    int64
}

type confirmationSampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	samples []confirmationSample // complete once done is closed
}

// sampleConfirmations samples, until stop, the position confirmed by the
// relay (its own) and by the slot (what Postgres was told), then the
// broker's message count.
func sampleConfirmations(t *testing.T, r *runningRelay, admin *pgxpool.Pool, slot string, b *testBroker) *confirmationSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &confirmationSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var confirmed pglogrepl.LSN
			for _, l := range r.Lag() {
				if lsn, err := pglogrepl.ParseLSN(l.ConfirmedFlushLSN); err == nil {
					confirmed = lsn
				}
			}
			var slotLSN string
			if err := admin.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&slotLSN); err == nil {
				if lsn, err := pglogrepl.ParseLSN(slotLSN); err == nil {
					confirmed = max(confirmed, lsn)
				}
			}
			if stored, err := storedMessages(b); err == nil {
				s.samples = append(s.samples, confirmationSample{at: time.Now(), confirmed: confirmed, stored: stored})
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *confirmationSampler) stop() {
	s.cancel()
	<-s.done
}

// check verifies every sample against the messages as the broker stored
// them (rec must hold them all, each once): no position was confirmed while
// a message of a transaction before it had no place in the broker yet.
func (s *confirmationSampler) check(t *testing.T, rec *received) {
	t.Helper()
	rec.mu.Lock()
	msgs := slices.Clone(rec.msgs)
	rec.mu.Unlock()
	// Storage order: by ledger, entry and place in the entry's batch (real
	// Pulsar may roll ledgers).
	storage := func(a, b pulsar.Message) int {
		return cmp.Or(cmp.Compare(a.ID().LedgerID(), b.ID().LedgerID()), cmp.Compare(a.ID().EntryID(), b.ID().EntryID()),
			cmp.Compare(a.ID().BatchIdx(), b.ID().BatchIdx()))
	}
	slices.SortFunc(msgs, storage)
	commits := make([]pglogrepl.LSN, len(msgs)) // commit LSN of the i-th stored message
	for i, m := range msgs {
		if i > 0 && storage(m, msgs[i-1]) == 0 {
			t.Fatalf("stored messages %d and %d have the same id %v", i-1, i, m.ID())
		}
		lsn, err := pglogrepl.ParseLSN(m.Properties()[eventmeta.CommitLSN])
		if err != nil {
			t.Fatalf("message %d: commit LSN: %v", i, err)
		}
		commits[i] = lsn
	}
	// earliest[i] is the oldest commit among the messages stored at i or later.
	earliest := make([]pglogrepl.LSN, len(commits)+1)
	earliest[len(commits)] = ^pglogrepl.LSN(0)
	for i := len(commits) - 1; i >= 0; i-- {
		earliest[i] = min(commits[i], earliest[i+1])
	}
	if len(s.samples) < 20 {
		t.Errorf("only %d samples of the confirmed position", len(s.samples))
	}
	t.Logf("checked %d samples of the confirmed position against the broker's log", len(s.samples))
	violations := 0
	for _, sm := range s.samples {
		stored := min(int(sm.stored), len(commits))
		if sm.confirmed <= earliest[stored] {
			continue
		}
		if violations++; violations <= 5 {
			t.Errorf("at %s, %s was confirmed while the broker held %d messages: a transaction committed at %s had not reached it",
				sm.at.Format("15:04:05.000"), sm.confirmed, sm.stored, earliest[stored])
		}
	}
	if violations > 5 {
		t.Errorf("%d samples in all confirmed past a message the broker did not have", violations)
	}
}
