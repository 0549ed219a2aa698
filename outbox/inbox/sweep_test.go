package inbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// insertInboxRows inserts n inbox rows applied age ago, as the consumer
// would have long before.
func (e *env) insertInboxRows(n int, age time.Duration) {
	e.t.Helper()
	e.exec(`INSERT INTO inbox (event_id, topic, type, applied_at)
		SELECT gen_random_uuid(), $1, 'alpes.orders.v1.OrderPlaced', now() - $2::interval - i * interval '1 millisecond'
		FROM generate_series(1, $3) AS i`, e.ordersTopic, age, n)
}

// countInboxOlderThan counts the inbox rows applied more than age ago.
func (e *env) countInboxOlderThan(age time.Duration) int {
	e.t.Helper()
	return e.count(`SELECT count(*) FROM inbox WHERE applied_at < now() - $1::interval`, age)
}

// TestSweepDeletesExpiredRowsInBatches checks that the sweep deletes the rows
// older than the retention, oldest first, in committed batches of the
// configured size, stops after the first short batch, and keeps newer rows,
// including one just inside the retention.
func TestSweepDeletesExpiredRowsInBatches(t *testing.T) {
	e := newEnv(t)
	retention := inbox.DefaultRetention
	e.insertInboxRows(25, retention+time.Hour)
	e.insertInboxRows(5, time.Minute)
	e.insertInboxRows(1, retention-time.Hour)

	batches := make(chan int64, 10)
	proceed := make(chan struct{})
	ended := make(chan struct{})
	cfg := e.config(effectRegistry())
	cfg.Sweep = inbox.Sweep{Batch: 10, Interval: time.Hour}
	c := e.start(cfg, func(c *inbox.Consumer) {
		inbox.SetAfterSweepBatch(c, func(n int64) {
			batches <- n
			select { // hold the sweep between batches until the test has looked
			case <-proceed:
			case <-ended:
			}
		})
	})
	t.Cleanup(func() { close(ended) }) // runs before the consumer is stopped

	for i, want := range []struct{ deleted, oldLeft int }{{10, 15}, {10, 5}, {5, 0}} {
		select {
		case n := <-batches:
			if n != int64(want.deleted) {
				t.Errorf("batch %d deleted %d rows, want %d", i, n, want.deleted)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("batch %d never came", i)
		}
		// Each batch is its own committed transaction: its deletes are
		// visible while the sweep is held before the next one.
		if left := e.countInboxOlderThan(retention); left != want.oldLeft {
			t.Errorf("after batch %d: %d expired rows left, want %d", i, left, want.oldLeft)
		}
		proceed <- struct{}{}
	}
	e.waitFor("the sweep to finish", func() bool { return !c.Stats().LastSweepAt.IsZero() })
	if len(batches) != 0 {
		t.Errorf("the sweep went on after a short batch: %d more batches", len(batches))
	}
	if n := e.count(`SELECT count(*) FROM inbox`); n != 6 {
		t.Errorf("%d inbox rows left, want the 6 inside the retention", n)
	}
	if st := c.Stats(); st.Swept != 25 || st.SweepFailures != 0 || st.LastSweepDuration <= 0 {
		t.Errorf("stats %+v: want 25 swept, no failures, a last sweep duration", st)
	}
}

// TestSweptEventIsAppliedAgain shows what the retention protects: while an
// event's id is in the inbox, a second delivery is a duplicate; once the
// sweep has removed it, the same event is applied again. This is why the
// retention must exceed the longest possible redelivery or replay.
func TestSweptEventIsAppliedAgain(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE applications (event_id uuid NOT NULL)`)
	e.exec(`GRANT INSERT ON applications TO ` + serviceRole)
	reg := inbox.NewRegistry()
	inbox.Handle(reg, func(ctx context.Context, tx inbox.Tx, msg inbox.Message, _ *ordersv1.OrderPlaced) error {
		_, err := tx.Exec(ctx, `INSERT INTO applications (event_id) VALUES ($1)`, msg.EventID)
		return err
	})
	cfg := e.config(reg)
	cfg.Sweep = inbox.Sweep{Retention: time.Hour, AllowShortRetention: true, Interval: 50 * time.Millisecond}
	c := e.start(cfg)
	ev := placed("order-1", 0)

	e.publisher(e.ordersTopic).publish(ev)
	e.waitFor("the event applied", func() bool { return c.Stats().Applied == 1 })
	e.publisher(e.ordersTopic).publish(ev)
	e.waitFor("the second delivery dropped", func() bool { return c.Stats().Duplicates == 1 })

	e.exec(`UPDATE inbox SET applied_at = now() - interval '2 hours' WHERE event_id = $1`, ev.id)
	e.insertInboxRows(1, 0) // the service has applied something since
	e.waitFor("the event's id swept", func() bool {
		return e.count(`SELECT count(*) FROM inbox WHERE event_id = $1`, ev.id) == 0
	})
	e.publisher(e.ordersTopic).publish(ev)
	e.waitFor("the third delivery applied", func() bool { return c.Stats().Applied == 2 })
	if n := e.count(`SELECT count(*) FROM applications WHERE event_id = $1`, ev.id); n != 2 {
		t.Errorf("%d applications of the event, want 2: once before the sweep, once after", n)
	}
	if st := c.Stats(); st.Duplicates != 1 || st.Swept != 1 {
		t.Errorf("stats %+v: want 1 duplicate and 1 row swept", st)
	}
}

// TestSweepStopsPromptlyOnCancel checks that a sweep blocked on locked rows
// does not hold Run up when its context ends, commits nothing, and is not
// counted as a failure.
func TestSweepStopsPromptlyOnCancel(t *testing.T) {
	e := newEnv(t)
	e.insertInboxRows(5, inbox.DefaultRetention+time.Hour)
	e.insertInboxRows(1, 0)
	ctx := context.Background()
	locker, err := e.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx)
	if _, err := locker.Exec(ctx, `SELECT 1 FROM inbox FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	c := e.start(e.config(effectRegistry()))
	e.waitFor("the sweep waiting on the locked rows", func() bool {
		return e.count(`SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE FROM inbox%'`) > 0
	})
	start := time.Now()
	if err := c.stop(t); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping took %s with a sweep blocked", took)
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM inbox`); n != 6 {
		t.Errorf("%d inbox rows after the cancelled sweep, want all 6", n)
	}
	if st := c.Stats(); st.Swept != 0 || st.SweepFailures != 0 || !st.LastSweepAt.IsZero() {
		t.Errorf("stats %+v: a cancelled sweep is neither a success nor a failure", st)
	}
}

// TestSweepMeasuresRetentionFromTheNewestRow checks that time in which the
// service applied nothing does not age its inbox: after an outage longer than
// the retention, the ids applied just before it are kept, so the messages
// committed but not acknowledged then, delivered first on return, are still
// duplicates. Rows a retention older than the newest go.
func TestSweepMeasuresRetentionFromTheNewestRow(t *testing.T) {
	e := newEnv(t)
	retention := inbox.DefaultRetention
	e.insertInboxRows(3, retention+24*time.Hour) // the last rows before an 8-day outage
	e.insertInboxRows(2, 2*retention+25*time.Hour)

	cfg := e.config(effectRegistry())
	cfg.Sweep = inbox.Sweep{Interval: time.Hour}
	c := e.start(cfg)
	e.waitFor("the sweep to finish", func() bool { return !c.Stats().LastSweepAt.IsZero() })
	if n := e.count(`SELECT count(*) FROM inbox`); n != 3 {
		t.Errorf("%d inbox rows left, want the 3 applied within a retention of the newest", n)
	}
	if st := c.Stats(); st.Swept != 2 {
		t.Errorf("stats %+v: want 2 swept", st)
	}
}

// TestInboxStaysBoundedWhileMessagesKeepComing runs a consumer under a
// steady stream with a short retention (time compressed: half a second for
// the production's days) and watches the inbox: it levels off at about the
// rows of one retention and one sweep interval, while the messages applied
// keep growing. Without the sweep it would hold every message.
func TestInboxStaysBoundedWhileMessagesKeepComing(t *testing.T) {
	const (
		perTick = 10
		tick    = 50 * time.Millisecond // 200 messages per second
		ticks   = 160                   // 8 seconds, 1,600 messages
	)
	e := newEnv(t)
	cfg := e.config(effectRegistry())
	cfg.Sweep = inbox.Sweep{Retention: 500 * time.Millisecond, AllowShortRetention: true, Interval: 100 * time.Millisecond, Batch: 100}
	c := e.start(cfg)
	pub := e.publisher(e.ordersTopic)

	// The stream is paced by a ticker (load, not synchronisation); the
	// inbox is sampled every half second of it.
	var samples []int
	pace := time.NewTicker(tick)
	defer pace.Stop()
	for i := range ticks {
		<-pace.C
		pub.publish(sequenceFrom(perTick, i, 1)...)
		if i%10 == 9 {
			samples = append(samples, e.count(`SELECT count(*) FROM inbox`))
		}
	}
	e.waitEffects(ticks * perTick)

	largest := slices.Max(samples[len(samples)/2:])
	t.Logf("inbox rows every 0.5 s: %v; applied %d, swept %d", samples, c.Stats().Applied, c.Stats().Swept)
	if largest > ticks*perTick/2 {
		t.Errorf("the inbox held up to %d rows in the second half of the run, of %d applied: it grows with the stream", largest, ticks*perTick)
	}
	if c.Stats().Swept == 0 {
		t.Error("the sweep deleted nothing")
	}
}
