package relay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/failpoint"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
)

// The crash tests run the relay in a child process (this test binary,
// re-executed with childEnv set) and kill it with SIGKILL, through armed
// failpoints at each point of the publish/confirm cycle.
const childEnv = "ALPES_RELAY_TEST_CHILD"

// runChild is the child process's main: a relay configured from the
// environment, running until it is killed.
func runChild() int {
	fps, err := failpoint.Parse(os.Getenv("ALPES_FAILPOINTS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := relay.New(relay.Config{
		Sources: []relay.SourceConfig{{
			Name:            "orders",
			DSN:             os.Getenv("ALPES_TEST_DSN"),
			Slot:            os.Getenv("ALPES_TEST_SLOT"),
			QuarantineTopic: os.Getenv("ALPES_TEST_QUARANTINE"),
			StatusInterval:  100 * time.Millisecond,
		}},
		Pulsar:       relay.PulsarConfig{URL: os.Getenv("ALPES_TEST_PULSAR_URL"), AdminURL: os.Getenv("ALPES_TEST_PULSAR_ADMIN_URL")},
		Failpoints:   fps,
		AllowNoDedup: os.Getenv("ALPES_TEST_ALLOW_NO_DEDUP") != "",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := r.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a relay process started by a crash test.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// childEnvOf is the environment of a child relay for source dsn and slot,
// publishing to broker, with failpoints armed.
func childEnvOf(broker *testBroker, dsn, slot, failpoints string) []string {
	return []string{
		childEnv + "=1",
		"ALPES_FAILPOINTS=" + failpoints,
		"ALPES_TEST_DSN=" + dsn,
		"ALPES_TEST_SLOT=" + slot,
		"ALPES_TEST_QUARANTINE=" + broker.quarantine,
		"ALPES_TEST_PULSAR_URL=" + broker.ServiceURL,
		"ALPES_TEST_PULSAR_ADMIN_URL=" + broker.AdminURL,
	}
}

func startChild(t *testing.T, db *pgtest.DB, broker *testBroker, failpoints string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnvOf(broker, db.DSNAs(migrations.RelayRole), db.Name, failpoints)...)
	cmd.Stderr = testlog.Writer(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// waitKilled waits for the child to die of SIGKILL, as an armed failpoint does.
func (c *child) waitKilled(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(waitTimeout):
		t.Fatal("the relay child did not crash at its failpoint")
	}
	var exitErr *exec.ExitError
	if !errors.As(c.err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("relay child ended with %v, want death by SIGKILL", c.err)
	}
}

func TestCrashAtEveryPointOfThePublishConfirmCycle(t *testing.T) {
	// The first relay crashes at the point's first count while rows stream
	// in; the second, which starts on the backlog left meanwhile, at its
	// second count; the third runs until everything has arrived. Sends are
	// counted in entries, and a backlog goes in batches: a few entries.
	points := []struct {
		name          string
		first, second int
	}{
		{"relay/before-send", 4, 2},
		{"relay/after-send", 4, 2},
		{"relay/after-receipt", 40, 90},
		{"relay/before-confirm", 40, 90},
	}
	for _, pt := range points {
		point := pt.name
		t.Run(strings.TrimPrefix(point, "relay/"), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, broker, rec := ordersToBroker(t)
			admin := db.Pool(t)
			writer := db.PoolAs(t, migrations.ServiceRole("orders"))

			// The first relay creates the slot.
			first := startChild(t, db, broker, fmt.Sprintf("%s=crash@%d", point, pt.first))
			// Rows committed before the new slot is consistent would not be
			// streamed (the relay would refuse them as a lost slot): write
			// only once the relay streams.
			waitStreaming(t, admin, db.Name)
			const keys, perKey = 6, 50
			var mu sync.Mutex
			var ids []string
			var wg sync.WaitGroup
			for k := range keys {
				wg.Go(func() {
					got := insertEvents(ctx, t, writer, broker.topic, fmt.Sprintf("order-%d", k), 0, perKey)
					mu.Lock()
					ids = append(ids, got...)
					mu.Unlock()
				})
			}
			first.waitKilled(t)
			second := startChild(t, db, broker, fmt.Sprintf("%s=crash@%d", point, pt.second))
			second.waitKilled(t)
			wg.Wait()
			startChild(t, db, broker, "")

			assertEverythingOnceAndConfirmed(t, rec, admin, db.Name, ids)
		})
	}
}

// TestCrashAmidBatches: a backlog drains in batches, the relay is killed at
// its fifth receipt, with a lane's first batch on the broker and most of the
// backlog not, and the next relay streams the backlog again from the
// position confirmed before. Each lane's producer learns the
// broker's last id under its name; what it sends again at or below that id
// goes alone and is dropped, and what lies above goes in new batches. A
// relay that batched the re-sent messages with new ones would have the
// whole batch dropped as a duplicate, and lose the new ones.
func TestCrashAmidBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	admin := db.Pool(t)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	// A relay creates the slot and goes; the backlog is written with no
	// relay running, so that the next one finds it whole.
	first := startChild(t, db, broker, "")
	waitStreaming(t, admin, db.Name)
	first.cmd.Process.Kill()
	<-first.exited
	const keys, perKey = 8, 60
	var ids []string
	for k := range keys {
		ids = append(ids, insertEvents(ctx, t, writer, broker.topic, fmt.Sprintf("order-%d", k), 0, perKey)...)
	}

	startChild(t, db, broker, "relay/after-receipt=crash@5").waitKilled(t)
	startChild(t, db, broker, "")
	assertEverythingOnceAndConfirmed(t, rec, admin, db.Name, ids)
	if n := rec.batched(); n < len(ids)/2 {
		t.Errorf("only %d of %d messages came in batches: the test did not exercise batching", n, len(ids))
	}
}

// assertEverythingOnceAndConfirmed waits until every event of ids has
// arrived and the slot has confirmed the WAL's end, then checks that each
// arrived once and every key's in order.
func assertEverythingOnceAndConfirmed(t *testing.T, rec *received, admin *pgxpool.Pool, slot string, ids []string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events", len(ids)), func() bool {
		distinct, _ := rec.count()
		return distinct >= len(ids)
	})
	waitFor(t, "the slot to confirm everything", func() bool {
		var caughtUp bool
		admin.QueryRow(context.Background(), `SELECT confirmed_flush_lsn >= pg_current_wal_insert_lsn() - 4096 FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&caughtUp)
		return caughtUp
	})
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
}

// waitStreaming waits until a relay streams from slot.
func waitStreaming(t *testing.T, admin *pgxpool.Pool, slot string) {
	t.Helper()
	waitFor(t, "the relay to stream", func() bool {
		var ok bool
		admin.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
			WHERE s.slot_name = $1 AND r.state = 'streaming')`, slot).Scan(&ok)
		return ok
	})
}
