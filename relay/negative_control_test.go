package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
)

// The negative control of the crash tests (issue 12): the relay restart of
// TestCrashAtEveryPointOfThePublishConfirmCycle, in a namespace whose
// deduplication is off, must show duplicates, and the exactly-once checker
// of those tests must fail on what the topic then holds. Without it, the
// crash tests could pass because the scenario never re-sends anything, or
// because the checker cannot fail.

// checkerDataEnv names the file of deliveries that
// TestNegativeControlCheckerChild checks, in a child process.
const checkerDataEnv = "ALPES_TEST_NEGATIVE_CONTROL_DATA"

// checkerData is what a test consumer saw: the ids written and the
// deliveries of each id.
type checkerData struct {
	IDs  []string       `json:"ids"`
	ByID map[string]int `json:"by_id"`
}

// TestRestartWithoutDeduplicationPublishesDuplicates: a relay killed after
// broker receipts it had not yet confirmed to Postgres, then restarted,
// publishes those rows again; with the namespace's deduplication off (and
// the relay allowed to publish there) the topic holds them twice, and the
// exactly-once checker says so.
func TestRestartWithoutDeduplicationPublishesDuplicates(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	off := broker.namespaceWithoutDedup(t)
	broker.topic = "persistent://" + off + "/events.v1"
	t.Setenv("ALPES_TEST_ALLOW_NO_DEDUP", "1") // read by runChild
	rec := consume(t, broker.ServiceURL, broker.topic)
	admin := db.Pool(t)

	// All rows in one transaction: the relay confirms it to Postgres only
	// once every row has a receipt, so a relay killed at the receipted-th
	// receipt has receipts for rows it never confirmed, whatever the timing.
	const rows, receipted = 50, 20
	first := startChild(t, db, broker, fmt.Sprintf("relay/after-receipt=crash@%d", receipted))
	waitFor(t, "the relay to stream", func() bool {
		var ok bool
		admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
			WHERE s.slot_name = $1 AND r.state = 'streaming')`, db.Name).Scan(&ok)
		return ok
	})
	ids := insertEventsInOneTransaction(ctx, t, db, broker.topic, "order-1", rows)
	first.waitKilled(t)
	startChild(t, db, broker, "")

	waitFor(t, "the slot to confirm everything", func() bool {
		var caughtUp bool
		admin.QueryRow(ctx, `SELECT confirmed_flush_lsn >= pg_current_wal_insert_lsn() - 4096 FROM pg_replication_slots WHERE slot_name = $1`, db.Name).Scan(&caughtUp)
		return caughtUp
	})
	// Every row sent again, and at least the receipted ones stored twice.
	waitFor(t, fmt.Sprintf("%d events and %d duplicates", rows, receipted), func() bool {
		distinct, total := rec.count()
		return distinct >= rows && total >= rows+receipted
	})

	rec.mu.Lock()
	data := checkerData{IDs: ids, ByID: rec.byID}
	var dups []string
	for _, id := range ids {
		if rec.byID[id] > 1 {
			dups = append(dups, id)
		}
	}
	raw, err := json.Marshal(data)
	rec.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(dups) < receipted {
		t.Fatalf("%d of %d events delivered more than once, want at least the %d receipted before the kill", len(dups), rows, receipted)
	}
	t.Logf("without deduplication, %d of %d events were delivered more than once", len(dups), rows)

	// The unchanged checker of the crash tests fails on these deliveries. It
	// fails the test it is given, so it runs in a child process.
	path := filepath.Join(t.TempDir(), "deliveries.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNegativeControlCheckerChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), checkerDataEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("the checker's child ended with %v, want exit status 1 (a failed test); output: %q", err, out)
	}
	for _, id := range dups {
		if want := fmt.Sprintf("event %s delivered %d times", id, data.ByID[id]); !strings.Contains(string(out), want) {
			t.Errorf("the checker did not report %q; output: %q", want, out)
		}
	}
}

// TestNegativeControlCheckerChild runs the exactly-once checker on the
// deliveries TestRestartWithoutDeduplicationPublishesDuplicates saw, in the
// child process that test starts; it must fail there. Otherwise it skips.
func TestNegativeControlCheckerChild(t *testing.T) {
	path := os.Getenv(checkerDataEnv)
	if path == "" {
		t.Skip("run in a child process by TestRestartWithoutDeduplicationPublishesDuplicates")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var data checkerData
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	rec := &received{byID: data.ByID}
	rec.assertExactlyOnce(t, data.IDs)
}

// insertEventsInOneTransaction inserts n outbox rows for topic and
// aggregate key in one transaction, payloads "<key>/<i>", and returns their
// ids.
func insertEventsInOneTransaction(ctx context.Context, t *testing.T, db *pgtest.DB, topic, key string, n int) []string {
	t.Helper()
	tx, err := db.PoolAs(t, migrations.ServiceRole("orders")).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, err := tx.Exec(ctx,
			`INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES ($1, $2, $3, 'alpes.test.v1.Probe', $4)`,
			ids[i], topic, key, []byte(fmt.Sprintf("%s/%d", key, i))); err != nil {
			t.Fatalf("inserting event %d: %v", i, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}
