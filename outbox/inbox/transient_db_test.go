package inbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// injectFaults makes an insert into effects fail with the SQLSTATE that the
// faults table holds for its event id, raised by the server as it raises its
// own: a stand-in for the faults no test can cause on demand inside a
// handler (a primary turned read-only by a fail-over, an I/O error).
func (e *env) injectFaults() {
	e.exec(`CREATE TABLE faults (event_id uuid PRIMARY KEY, sqlstate text NOT NULL)`)
	e.exec(`GRANT SELECT ON faults TO ` + serviceRole)
	e.exec(`CREATE FUNCTION raise_fault() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE code text;
		BEGIN
			SELECT sqlstate INTO code FROM faults WHERE event_id = NEW.event_id;
			IF code IS NOT NULL THEN
				RAISE EXCEPTION 'injected fault %', code USING ERRCODE = code;
			END IF;
			RETURN NEW;
		END $$`)
	e.exec(`CREATE TRIGGER raise_fault BEFORE INSERT ON effects FOR EACH ROW EXECUTE FUNCTION raise_fault()`)
}

// raise returns a fault that makes ev's effect fail with sqlstate until healed.
func (e *env) raise(sqlstate string) func(ev event) (heal func()) {
	return func(ev event) func() {
		e.exec(`INSERT INTO faults (event_id, sqlstate) VALUES ($1, $2)`, ev.id, sqlstate)
		return func() { e.exec(`DELETE FROM faults WHERE event_id = $1`, ev.id) }
	}
}

// lockEffect holds an uncommitted row with ev's event id in effects, so
// that the handler's insert waits on it until the statement timeout cancels
// it (57014), as behind a long migration; healing rolls the row back.
func (e *env) lockEffect(ev event) (heal func()) {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.admin.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = tx.Rollback(ctx) }) // a no-op once healed
	if _, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, seq) VALUES ($1, 'lock', -1)`, ev.id); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
}

// callCounter is recordEffect, counting its calls per event id.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (h *callCounter) handle(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
	h.mu.Lock()
	h.calls[msg.EventID]++
	h.mu.Unlock()
	return recordEffect(ctx, tx, msg, body)
}

func (h *callCounter) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

// TestTransientDatabaseErrorsAreRetriedUntilTheyHeal checks issue 12, item
// 5: a handler whose statements meet a database fault that heals (a
// read-only primary during a fail-over, an I/O error, a statement cancelled
// by its timeout) for longer than MaxAttempts is not dead-lettered or
// parked, and its key does not move on: the consumer retries with capped
// backoff, and once the fault heals every message is applied once, in key
// order.
func TestTransientDatabaseErrorsAreRetriedUntilTheyHeal(t *testing.T) {
	e := newEnv(t)
	e.injectFaults()
	h := &callCounter{calls: map[string]int{}}
	reg := inbox.NewRegistry()
	inbox.Handle(reg, h.handle)
	cfg := e.config(reg)
	cfg.DB = e.appPoolWith(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["statement_timeout"] = "200" // ms, as a service may configure it
	})
	cfg.MaxAttempts = 3
	cfg.MaxBackoff = 40 * time.Millisecond
	c := e.start(cfg)
	pub := e.publisher(e.ordersTopic)

	faults := []struct {
		name   string
		inject func(event) (heal func())
	}{
		{"25006 read-only transaction", e.raise("25006")},
		{"58030 I/O error", e.raise("58030")},
		{"57014 statement timeout", e.lockEffect},
	}
	var all []event
	for i, f := range faults {
		key := fmt.Sprintf("order-%d", i)
		evs := []event{placed(key, 0), placed(key, 1), placed(key, 2)}
		heal := f.inject(evs[0])
		before := c.Stats()
		pub.publish(evs...)

		attempts := cfg.MaxAttempts + 2
		e.waitFor(fmt.Sprintf("%s: %d attempts, or a dead letter", f.name, attempts), func() bool {
			st := c.Stats()
			return h.count(evs[0].id) >= attempts || st.DeadLettered > 0 || st.Parked > 0
		})
		st := c.Stats()
		if st.DeadLettered != 0 || st.Parked != 0 || st.Retries != before.Retries {
			t.Fatalf("%s: stats %+v after %d handler calls: want no handler retries, nothing dead-lettered or parked",
				f.name, st, h.count(evs[0].id))
		}
		if st.DBRetries <= before.DBRetries {
			t.Errorf("%s: stats %+v: want the database retries counted", f.name, st)
		}
		if n := e.count(`SELECT count(*) FROM effects WHERE aggregate_id = $1`, key); n != 0 {
			t.Fatalf("%s: %d effects of %s while its first event fails: the key moved on", f.name, n, key)
		}

		heal()
		all = append(all, evs...)
		e.waitEffects(len(all))
	}
	e.waitDrained(e.ordersTopic)
	e.assertEffects(all)
	if n := e.count(`SELECT count(*) FROM parked_messages`); n != 0 {
		t.Errorf("%d parked messages, want none", n)
	}
	if st := c.Stats(); st.Applied != int64(len(all)) || st.DeadLettered != 0 || st.Retries != 0 {
		t.Errorf("stats %+v: want %d applied, no handler retries, nothing dead-lettered", st, len(all))
	}
}

// TestShutdownIsPromptDuringATransientDatabaseError checks that a consumer
// waiting out a database fault stops as soon as it is told to, however long
// its backoff, and leaves the message unacknowledged for the next instance.
func TestShutdownIsPromptDuringATransientDatabaseError(t *testing.T) {
	e := newEnv(t)
	e.injectFaults()
	ev := placed("order-1", 0)
	e.raise("25006")(ev) // never healed: a primary that stays read-only
	cfg := e.config(effectRegistry())
	cfg.RetryBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	c := e.start(cfg)
	e.publisher(e.ordersTopic).publish(ev)

	e.waitFor("a retry", func() bool { st := c.Stats(); return st.DBRetries+st.Retries > 0 })
	start := time.Now()
	if err := c.stop(t); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping took %s during an hour's backoff", took)
	}
	if st := c.Stats(); st.Retries != 0 || st.DeadLettered != 0 || st.Parked != 0 || st.Applied != 0 {
		t.Errorf("stats %+v: want only database retries", st)
	}
	if n := e.backlog(e.ordersTopic); n != 1 {
		t.Errorf("backlog %d after the stop, want the message unacknowledged", n)
	}
}
