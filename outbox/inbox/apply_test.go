package inbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

func TestAppliesEveryMessageOnceAcrossBatches(t *testing.T) {
	e := newEnv(t)
	evs := sequence(5, 50)
	e.publisher(e.ordersTopic).publish(evs...)
	cfg := e.config(effectRegistry())
	cfg.BatchSize = 16
	c := e.start(cfg)

	e.waitEffects(len(evs))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(evs)
	if n := e.count(`SELECT count(*) FROM inbox`); n != len(evs) {
		t.Errorf("inbox holds %d rows, want %d", n, len(evs))
	}
	if st := c.Stats(); st.Applied != int64(len(evs)) || st.Duplicates != 0 {
		t.Errorf("stats %+v, want %d applied and no duplicates", st, len(evs))
	}
}

func TestSameEventPublishedTwiceHasOneEffect(t *testing.T) {
	e := newEnv(t)
	ev := placed("order-1", 0)
	e.publisher(e.ordersTopic).publish(ev)
	e.publisher(e.ordersTopic).publish(ev, placed("order-1", 1)) // a new producer sends it again
	c := e.start(e.config(effectRegistry()))

	e.waitFor("both copies and the next event disposed of", func() bool {
		st := c.Stats()
		return st.Applied == 2 && st.Duplicates == 1
	})
	e.waitDrained(e.ordersTopic)
	if n := e.count(`SELECT count(*) FROM effects WHERE event_id = $1`, ev.id); n != 1 {
		t.Errorf("%d effects of the event published twice, want 1", n)
	}
}

func TestRedeliveryAfterCommitBeforeAckIsAbsorbed(t *testing.T) {
	e := newEnv(t)
	evs := sequence(3, 10)
	e.publisher(e.ordersTopic).publish(evs...)

	// The first instance dies between its first commit and the acks.
	errCrash := errors.New("crash after commit")
	first := e.start(e.config(effectRegistry()), func(c *inbox.Consumer) {
		inbox.SetAfterCommit(c, func() error { return errCrash })
	})
	<-first.Done()
	if !errors.Is(first.Err(), errCrash) {
		t.Fatalf("first instance ended with %v, want the crash", first.Err())
	}
	committed := e.count(`SELECT count(*) FROM effects`)
	if committed == 0 {
		t.Fatal("nothing committed before the crash")
	}

	second := e.start(e.config(effectRegistry()))
	e.waitEffects(len(evs))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(evs)
	if st := second.Stats(); st.Duplicates < int64(committed) {
		t.Errorf("second instance saw %d duplicates, want at least the %d committed before the crash", st.Duplicates, committed)
	}
}

func TestCancelBeforeCommitLeavesMessagesForTheNextInstance(t *testing.T) {
	e := newEnv(t)
	evs := sequence(2, 10)
	e.publisher(e.ordersTopic).publish(evs...)

	ctx, cancel := context.WithCancel(context.Background())
	first := e.startCtx(ctx, e.config(effectRegistry()), func(c *inbox.Consumer) {
		inbox.SetBeforeCommit(c, func() error {
			cancel() // the instance is told to stop mid-transaction
			return ctx.Err()
		})
	})
	<-first.Done()
	if first.Err() != nil {
		t.Fatalf("cancelled instance returned %v, want nil", first.Err())
	}
	if n := e.count(`SELECT count(*) FROM effects`); n != 0 {
		t.Fatalf("%d effects committed by the cancelled instance", n)
	}

	e.start(e.config(effectRegistry()))
	e.waitEffects(len(evs))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(evs)
}

func TestDatabaseConnectionLostRetriesTheBatch(t *testing.T) {
	e := newEnv(t)
	evs := sequence(2, 20)
	e.publisher(e.ordersTopic).publish(evs...)

	reg := inbox.NewRegistry()
	killed := false
	inbox.Handle(reg, func(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
		if !killed { // handlers run on one goroutine: no lock needed
			killed = true
			var pid int
			if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				return err
			}
			if _, err := e.admin.Exec(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid); err != nil {
				return err
			}
		}
		return recordEffect(ctx, tx, msg, body)
	})
	c := e.start(e.config(reg))
	e.waitEffects(len(evs))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(evs)
	if st := c.Stats(); st.DBRetries == 0 || st.Retries != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v: want a database retry and no handler retries or dead letters", st)
	}
}

func TestApplyProgressRecordsTheNewestCommitPerTopic(t *testing.T) {
	e := newEnv(t)
	// Postgres keeps microseconds; the commit times lie in the past.
	base := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	var orders []event
	for i := range 3 {
		ev := placed("order-1", i)
		ev.commitTime = base.Add(time.Duration(i) * time.Second)
		orders = append(orders, ev)
	}
	payment := paymentEvent("order-1")
	payment.commitTime = base.Add(10 * time.Second)
	e.publisher(e.ordersTopic).publish(orders...)
	e.publisher(e.paymentsTopic).publish(payment)

	reg := effectRegistry()
	inbox.Skip[*paymentsv1.PaymentProcessed](reg)
	c := e.start(e.config(reg, e.ordersTopic, e.paymentsTopic))
	e.waitFor("every event disposed of", func() bool {
		st := c.Stats()
		return st.Applied == 3 && st.Skipped == 1
	})

	progress, err := inbox.ReadProgress(context.Background(), e.app)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		topic, lastID string
		committed     time.Time
		count         int64
	}{
		{e.ordersTopic, orders[2].id, orders[2].commitTime, 3},
		{e.paymentsTopic, payment.id, payment.commitTime, 1},
	}
	if len(progress) != len(want) {
		t.Fatalf("progress %+v, want %d topics", progress, len(want))
	}
	for i, w := range want {
		p := progress[i]
		if p.Topic != w.topic || p.LastEventID != w.lastID || !p.LastCommittedAt.Equal(w.committed) || p.AppliedCount != w.count {
			t.Errorf("progress %+v, want topic %s, last event %s committed at %s, count %d", p, w.topic, w.lastID, w.committed, w.count)
		}
		if p.Lag() <= 0 {
			t.Errorf("%s: lag %s, want positive", p.Topic, p.Lag())
		}
	}
	if n := e.count(`SELECT count(*) FROM inbox WHERE source_committed_at = $1`, orders[1].commitTime); n != 1 {
		t.Errorf("inbox rows with the second event's commit time: %d, want 1", n)
	}
}

// TestABacklogIsAppliedInBulkWithoutWaiting checks that batches form from
// what has already arrived, with no waiting at all (a negative BatchWait): a
// backlog is applied many messages per transaction, because what arrives
// while one batch commits forms the next. Rows inserted by one transaction
// share its xmin.
func TestABacklogIsAppliedInBulkWithoutWaiting(t *testing.T) {
	e := newEnv(t)
	evs := sequence(10, 30)
	e.publisher(e.ordersTopic).publish(evs...)
	cfg := e.config(effectRegistry())
	cfg.BatchWait = -1
	e.start(cfg)

	e.waitEffects(len(evs))
	e.assertEffects(evs)
	txs := e.count(`SELECT count(DISTINCT xmin::text) FROM inbox`)
	if txs > len(evs)/3 {
		t.Errorf("%d messages applied in %d transactions: a backlog should be applied in bulk", len(evs), txs)
	}
}

// TestABatchIsAppliedOnceTheStreamPauses: a batch that found more than one
// message waiting goes on filling only while messages keep coming. Here
// BatchWait is an hour and two messages wait before the consumer starts:
// they must be applied once no third follows within BatchGap, not an hour
// later (waitEffects gives up after a minute).
func TestABatchIsAppliedOnceTheStreamPauses(t *testing.T) {
	e := newEnv(t)
	evs := sequence(1, 2)
	e.publisher(e.ordersTopic).publish(evs...)
	cfg := e.config(effectRegistry())
	cfg.BatchWait, cfg.BatchGap = time.Hour, 20*time.Millisecond
	e.start(cfg)

	e.waitEffects(len(evs))
	e.assertEffects(evs)
}
