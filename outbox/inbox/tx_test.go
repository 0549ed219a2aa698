package inbox_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// TestApplyTransactionCostsTwoRoundTripsBesidesItsHandler watches, with a
// pgx tracer, what the consumer sends for one message whose handler runs one
// statement: BEGIN travels with the inbox insert, the progress update with
// COMMIT, and nothing else is sent alone.
func TestApplyTransactionCostsTwoRoundTripsBesidesItsHandler(t *testing.T) {
	e := newEnv(t)
	ev := placed("order-1", 0)
	e.publisher(e.ordersTopic).publish(ev)

	rec := &sendRecorder{byConn: map[*pgx.Conn][]string{}}
	cfg := e.config(effectRegistry())
	cfg.DB = e.appPoolWith(func(c *pgxpool.Config) { c.ConnConfig.Tracer = rec })
	c := e.start(cfg)
	e.waitFor("the event applied", func() bool { return c.Stats().Applied == 1 })

	want := []string{
		"batch: BEGIN; INSERT INTO inbox",
		"query: INSERT INTO effects",
		"batch: INSERT INTO apply_progress; COMMIT",
	}
	sends := rec.sendsAround("INSERT INTO inbox")
	if !slices.Equal(sends, want) {
		t.Errorf("the apply transaction sent\n\t%s\nwant\n\t%s", strings.Join(sends, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestHandlerThatCarriesOnAfterAFailedStatementCommitsNothing: a handler
// that ignores a statement's error and returns nil leaves a failed
// transaction, which COMMIT would roll back. The consumer must see the
// failure as the handler's, never commit or acknowledge that attempt, nor
// count it applied: it is applied by a later attempt, once.
func TestHandlerThatCarriesOnAfterAFailedStatementCommitsNothing(t *testing.T) {
	e := newEnv(t)
	ev := placed("order-1", 0)
	e.publisher(e.ordersTopic).publish(ev)

	var attempts atomic.Int32
	reg := inbox.NewRegistry()
	inbox.Handle(reg, func(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
		if err := recordEffect(ctx, tx, msg, body); err != nil {
			return err
		}
		if attempts.Add(1) == 1 {
			_, _ = tx.Exec(ctx, `SELECT 1/0`) // the error ignored: the transaction has failed
		}
		return nil
	})
	c := e.start(e.config(reg))
	e.waitDrained(e.ordersTopic) // acknowledged: by then the effect must be there

	if n := attempts.Load(); n < 2 {
		t.Errorf("the handler ran %d times, want a second attempt after the rolled-back commit", n)
	}
	e.assertEffects([]event{ev})
	if st := c.Stats(); st.Applied != 1 || st.Retries < 1 || st.DBRetries != 0 {
		t.Errorf("stats %+v, want 1 applied after at least one retry of the handler, none as a database fault", st)
	}
}

// sendRecorder is a pgx tracer that records, per connection, each query and
// each batch sent, by the first words of their statements.
type sendRecorder struct {
	mu     sync.Mutex
	byConn map[*pgx.Conn][]string
}

func (r *sendRecorder) add(conn *pgx.Conn, send string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byConn[conn] = append(r.byConn[conn], send)
}

// sendsAround returns the three sends on a connection that start with the
// first one mentioning marker, or nil when none does.
func (r *sendRecorder) sendsAround(marker string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sends := range r.byConn {
		for i, s := range sends {
			if strings.Contains(s, marker) {
				return slices.Clone(sends[i:min(i+3, len(sends))])
			}
		}
	}
	return nil
}

// statementHead is the first words of a statement, enough to tell alpes's
// apart: "INSERT INTO inbox", "COMMIT".
func statementHead(sql string) string {
	words := strings.Fields(sql)
	n := 1
	if len(words) > 0 && strings.EqualFold(words[0], "INSERT") {
		n = 3
	}
	return strings.Join(words[:min(n, len(words))], " ")
}

func (r *sendRecorder) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.add(conn, "query: "+statementHead(data.SQL))
	return ctx
}

func (r *sendRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *sendRecorder) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	heads := make([]string, 0, data.Batch.Len())
	for _, q := range data.Batch.QueuedQueries {
		heads = append(heads, statementHead(q.SQL))
	}
	r.add(conn, "batch: "+strings.Join(heads, "; "))
	return ctx
}

func (r *sendRecorder) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (r *sendRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
