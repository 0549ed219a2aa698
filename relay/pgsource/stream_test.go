package pgsource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/relay/pgsource"
)

// TestStreamHandsOverBoundedBatchesInOrder: the stream's batches are never
// empty, never longer than MaxBatchChanges, and together hold every change
// in stream order, a transaction larger than a batch included; while nobody
// takes a batch, standby status updates keep going out.
func TestStreamHandsOverBoundedBatchesInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := pgtest.New(t, "orders")
	admin := db.Pool(t)
	startLSN := createSlot(ctx, t, admin, "stream_test")
	const small, bigRows = 1000, 3*pgsource.MaxBatchChanges + 7
	// small one-row transactions, then one of bigRows rows.
	const columns = `INSERT INTO outbox (id, topic, aggregate_id, type, payload) `
	if _, err := admin.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP `+columns+
		`VALUES (gen_random_uuid(), 'persistent://alpes/test/t.v1', 'k' || i, 't', '\x00'); COMMIT; END LOOP; END $$`, small)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, columns+
		`SELECT gen_random_uuid(), 'persistent://alpes/test/t.v1', 'big', 't', '\x00' FROM generate_series(1, $1)`, bigRows); err != nil {
		t.Fatal(err)
	}

	out := make(chan []pgsource.Change) // unbuffered: the test paces the stream
	statuses, done := startStream(ctx, t, db, "stream_test", startLSN, 20*time.Millisecond, out)

	// Nobody takes a batch yet: status updates must keep flowing.
	for range 3 {
		select {
		case <-statuses:
		case <-ctx.Done():
			t.Fatal("no standby status update while the consumer was paused")
		}
	}

	var txs, rows, bigSeen int
	var inTx bool
	var last pgsource.LSN
	for txs < small+1 {
		var batch []pgsource.Change
		select {
		case batch = <-out:
		case err := <-done:
			t.Fatalf("stream ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("timed out after %d transactions", txs)
		}
		if len(batch) == 0 || len(batch) > pgsource.MaxBatchChanges {
			t.Fatalf("batch of %d changes", len(batch))
		}
		for _, c := range batch {
			switch c := c.(type) {
			case *pgsource.Begin:
				if inTx || c.CommitLSN <= last {
					t.Fatalf("begin at %s after %s (in a transaction: %v)", c.CommitLSN, last, inTx)
				}
				inTx, last = true, c.CommitLSN
			case *pgsource.Row:
				if !inTx || c.Err != nil {
					t.Fatalf("row %+v (in a transaction: %v)", c, inTx)
				}
				rows++
				if c.AggregateID == "big" {
					bigSeen++
				}
			case *pgsource.Commit:
				if !inTx || c.CommitLSN != last {
					t.Fatalf("commit at %s for the begin at %s", c.CommitLSN, last)
				}
				inTx = false
				txs++
			}
		}
	}
	if rows != small+bigRows || bigSeen != bigRows {
		t.Errorf("%d rows, %d of the big transaction; want %d and %d", rows, bigSeen, small+bigRows, bigRows)
	}
}

// TestCommitsElsewhereInTheClusterWakeNoKeepalives: a walsender about to
// wait for WAL sends a keepalive whenever its client's reported write and
// flush positions are both behind what it has read, and every commit
// anywhere in the cluster makes it read and wait again. A client reporting
// honest positions once a second would get a keepalive or two per commit of
// every database the cluster holds, each one a wake-up of the relay for
// nothing. The stream reports a write position the walsender can never pass
// (see sendStatus), so commits in another database cost it no message.
func TestCommitsElsewhereInTheClusterWakeNoKeepalives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := pgtest.New(t, "orders")
	other := pgtest.New(t, "payments")
	admin, elsewhere := db.Pool(t), other.Pool(t)
	pgtest.Exec(t, elsewhere, `CREATE TABLE busy (n int)`)
	startLSN := createSlot(ctx, t, admin, "keepalive_test")
	out := make(chan []pgsource.Change, 16)
	// A status interval the test never reaches: the one status it sees is
	// the stream's first, sent as it starts.
	statuses, done := startStream(ctx, t, db, "keepalive_test", startLSN, 30*time.Second, out)
	select {
	case <-statuses:
	case <-time.After(10 * time.Second):
		t.Fatal("no standby status update when the stream started")
	}

	const commits = 300
	for i := range commits {
		pgtest.Exec(t, elsewhere, `INSERT INTO busy VALUES ($1)`, i)
	}
	// A row of the slot's own database, committed after all of them: once
	// it arrives, the walsender has read past every commit above.
	pgtest.Exec(t, admin, `INSERT INTO outbox (id, topic, aggregate_id, type, payload)
		VALUES (gen_random_uuid(), 'persistent://alpes/test/t.v1', 'last', 't', '\x00')`)
	keepalives := 0
	for arrived := false; !arrived; {
		select {
		case batch := <-out:
			for _, c := range batch {
				switch c := c.(type) {
				case *pgsource.Keepalive:
					keepalives++
				case *pgsource.Row:
					arrived = c.AggregateID == "last"
				}
			}
		case err := <-done:
			t.Fatalf("stream ended: %v", err)
		case <-ctx.Done():
			t.Fatal("the last row never arrived")
		}
	}
	// The stream's own request (its first status, sent caught up) is answered
	// with a keepalive; a keepalive per commit elsewhere would be 300 or more.
	if keepalives > commits/10 {
		t.Errorf("%d keepalives during %d commits in another database; want at most %d", keepalives, commits, commits/10)
	}
	t.Logf("%d keepalives during %d commits in another database", keepalives, commits)
}

// createSlot creates a pgoutput slot named name and returns its start.
func createSlot(ctx context.Context, t *testing.T, admin *pgxpool.Pool, name string) pgsource.LSN {
	t.Helper()
	var start string
	if err := admin.QueryRow(ctx, `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, name).Scan(&start); err != nil {
		t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(start)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// startStream streams slot from start into out, confirming nothing past
// start, over a replication connection as the relay's role. statuses gets
// a value after each standby status update (none while it is full); done
// gets Stream's error. When the test ends the stream is stopped and must
// have ended only because it was.
func startStream(ctx context.Context, t *testing.T, db *pgtest.DB, slot string, start pgsource.LSN, interval time.Duration, out chan<- []pgsource.Change) (statuses <-chan struct{}, done <-chan error) {
	t.Helper()
	repl, err := pgconn.Connect(ctx, db.ReplicationDSN(migrations.RelayRole))
	if err != nil {
		t.Fatal(err)
	}
	status := make(chan struct{}, 100)
	ended := make(chan error, 1)
	streamCtx, stop := context.WithCancel(ctx)
	go func() {
		ended <- pgsource.Stream(streamCtx, repl, pgsource.StreamOptions{
			Slot:           slot,
			Publication:    schema.Publication,
			Start:          start,
			Confirmed:      func() pgsource.LSN { return start },
			StatusInterval: interval,
			OnStatus: func(_, _ pgsource.LSN) {
				select {
				case status <- struct{}{}:
				default:
				}
			},
		}, out)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-ended; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stream: %v", err)
		}
		repl.Close(context.Background())
	})
	return status, ended
}
