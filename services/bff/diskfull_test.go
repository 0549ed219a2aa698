package bff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/eventcatalog"
)

// TestDiskFullOnTheDatabase covers FAULTS row 10. The bff's database lives in
// a tablespace on a small tmpfs, which the test fills up while orders come
// in: Postgres cannot extend a table (ENOSPC, SQLSTATE 53100), so the bff
// answers a 5xx problem and writes nothing of that order, and never answers
// 2xx for an order it did not store. Once space returns, the refused orders
// are sent again with the same Idempotency-Keys and succeed, and every
// accepted order reaches the broker through the relay exactly once.
//
// It needs root (to mount the tmpfs); elsewhere it skips.
func TestDiskFullOnTheDatabase(t *testing.T) {
	ctx := context.Background()
	small := smallFilesystem(t, "32m")
	cluster, admin := clusterWithDatabaseOn(t, small)

	broker := brokertest.Start(t)
	topics, err := eventcatalog.TopicsFor(broker.Tenant(t, eventcatalog.Namespaces()...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{
		Sources: []relay.SourceConfig{{Name: "bff", DSN: cluster.DSN(migrations.RelayRole, "bff"),
			QuarantineTopic: topics.RelayQuarantine}},
		Pulsar: relay.PulsarConfig{URL: broker.ServiceURL, AdminURL: broker.AdminURL},
		Logger: testlog.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- r.Run(relayCtx) }()
	t.Cleanup(func() { stopRelay(); <-relayDone })
	waitFor(t, "the relay to stream", func() bool {
		lag := r.Lag()
		return len(lag) == 1 && lag[0].State == relay.StateStreaming
	})
	commands := countByKey(t, broker, topics.OrderCommands)

	app, err := pgxpool.New(ctx, cluster.DSN("alpes_bff", "bff"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	var logs testlog.Buffer
	logger := testlog.New(t, &logs)
	e := &env{t: t, admin: admin, app: app}
	e.start(Config{DB: app, Topics: topics, Logger: logger})

	orders := map[string]string{} // Idempotency-Key → id of every accepted order
	place := func(key string) (ok bool) {
		t.Helper()
		resp := e.post(key, validBody)
		switch {
		case resp.StatusCode == http.StatusAccepted:
			var a accepted
			resp.json(t, &a)
			if a.OrderID == "" {
				t.Fatalf("202 without an order id: %s", resp.body)
			}
			orders[key] = a.OrderID
			return true
		case resp.StatusCode == http.StatusServiceUnavailable:
			checkProblem(t, resp, resp.StatusCode, "")
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("order %s: 503 without Retry-After", key)
			}
			return false
		}
		t.Fatalf("order %s: status %d: %s", key, resp.StatusCode, resp.body)
		return false
	}
	for i := range 5 {
		if !place(fmt.Sprintf("before-%d", i)) {
			t.Fatalf("order before-%d refused with space to spare", i)
		}
	}

	filler := fill(t, small)
	var refused []string
	for i := 0; len(refused) < 3; i++ {
		if i == 2000 {
			t.Fatalf("2000 orders accepted on a full disk, none refused")
		}
		key := fmt.Sprintf("full-%d", i)
		if !place(key) {
			refused = append(refused, key)
		}
	}
	t.Logf("the tmpfs full, %d more orders fitted in pages already allocated before %d were refused", len(orders)-5, len(refused))
	for _, key := range refused {
		if n := e.count(`SELECT count(*) FROM idempotency_keys WHERE key = $1`, key); n != 0 {
			t.Errorf("refused order %s left an idempotency record", key)
		}
	}
	if n, want := e.count(`SELECT count(*) FROM outbox`), len(orders); n != want {
		t.Errorf("%d outbox rows for %d accepted orders", n, want)
	}
	if n, want := e.count(`SELECT count(*) FROM order_requests`), len(orders); n != want {
		t.Errorf("%d order requests for %d accepted orders", n, want)
	}
	if !strings.Contains(logs.String(), "53100") && !strings.Contains(logs.String(), "No space left on device") {
		t.Errorf("the bff's logs do not say the disk is full:\n%s", logs.String())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, key := range refused {
		if !place(key) {
			t.Fatalf("order %s refused again once space returned", key)
		}
	}
	for i := range 5 {
		if !place(fmt.Sprintf("after-%d", i)) {
			t.Fatalf("order after-%d refused once space returned", i)
		}
	}

	waitFor(t, fmt.Sprintf("%d PlaceOrder commands", len(orders)), func() bool { return commands.total() >= len(orders) })
	byKey := commands.snapshot()
	for key, id := range orders {
		if n := byKey[id]; n != 1 {
			t.Errorf("order %s (%s): %d PlaceOrder commands, want 1", id, key, n)
		}
	}
	if len(byKey) != len(orders) {
		t.Errorf("commands for %d orders, %d accepted", len(byKey), len(orders))
	}
	if l := r.Lag()[0]; l.State != relay.StateStreaming {
		t.Errorf("relay %s after the disk filled: %s", l.State, l.Error)
	}
}

// smallFilesystem mounts a tmpfs of size (mount's syntax, "32m") owned by the
// user Postgres runs as, unmounted when the test ends. It skips, naming the
// command and its error, where that cannot be done.
func smallFilesystem(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem to fill needs root")
	}
	pg, err := user.Lookup(pgcluster.Superuser)
	if err != nil {
		t.Skipf("no %s user to run Postgres as: %v", pgcluster.Superuser, err)
	}
	// Not t.TempDir: Postgres, as another user, must reach the mount point.
	dir, err := os.MkdirTemp("", "alpes-disk-full-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-t", "tmpfs", "-o", fmt.Sprintf("size=%s,mode=0700,uid=%s,gid=%s", size, pg.Uid, pg.Gid), "tmpfs", dir}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("mount %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// clusterWithDatabaseOn starts a cluster of the test's own whose bff
// database, migrated, lives in a tablespace in dir; its write-ahead log
// stays on the ordinary disk. It returns the cluster and a superuser pool.
func clusterWithDatabaseOn(t *testing.T, dir string) (*pgcluster.Cluster, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		fmt.Sprintf(`CREATE TABLESPACE small LOCATION '%s'`, dir),
		`CREATE DATABASE bff TABLESPACE small`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	cfg, err := pgx.ParseConfig(c.AdminDSN("bff"))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := migrations.NewProvider(db, "bff")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := pgxpool.New(ctx, c.AdminDSN("bff"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return c, admin
}

// fill writes a file into dir until the filesystem has no space left, and
// returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10} {
		buf := make([]byte, chunk)
		for {
			_, err := f.Write(buf)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

// keyCounter counts the messages of a topic by key.
type keyCounter struct {
	mu    sync.Mutex
	byKey map[string]int
	n     int
}

func (c *keyCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *keyCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.byKey))
	for k, n := range c.byKey {
		out[k] = n
	}
	return out
}

// countByKey subscribes to topic from its start and counts every message
// by key until the test ends.
func countByKey(t *testing.T, b *brokertest.Broker, topic string) *keyCounter {
	t.Helper()
	consumer, err := b.Client(t).Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "disk-full-test-" + brokertest.UniqueName(t),
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &keyCounter{byKey: map[string]int{}}
	brokertest.Consume(t, consumer, func(msg pulsar.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.byKey[msg.Key()]++
		c.n++
	})
	return c
}
