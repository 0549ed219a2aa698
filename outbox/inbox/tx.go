package inbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Tx is what a handler may do in the transaction that applies its message:
// run statements, one at a time or as a batch. It cannot commit or roll
// back; the consumer does that, after the handlers of the whole run. pgx.Tx
// and *pgx.Conn satisfy it, and outbox.Append takes it.
type Tx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ Tx = (pgx.Tx)(nil)
	_ Tx = (*pgx.Conn)(nil)
)

// applyConn is one apply transaction on a connection of its own, begun and
// committed in the same round trips as the inbox's own statements rather
// than in two more: BEGIN travels with the inbox insert, COMMIT with the
// progress update. pgx's Tx sends each of them alone: at a trickle, where
// every message is a transaction of its own, that is two round trips more
// per message, and as many wake-ups of the service and its backend.
//
// Postgres runs a batch as one implicit transaction unless it holds a BEGIN;
// then the transaction outlives the batch, as it does here, until COMMIT or
// ROLLBACK.
type applyConn struct {
	pooled *pgxpool.Conn
}

// beginApply acquires a connection and begins a transaction on it, and in
// the same round trip runs first with its arguments and collects its rows
// with scan: the statement that records a run of messages in the inbox. On
// an error nothing is left open: the connection is back in the pool.
func beginApply[T any](ctx context.Context, db DB, scan pgx.RowToFunc[T], first string, args ...any) (*applyConn, []T, error) {
	pooled, err := db.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	ac := &applyConn{pooled: pooled}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(first, args...)
	br := ac.conn().SendBatch(ctx, b)
	got, err := func() ([]T, error) {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("beginning a transaction: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, scan)
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		ac.release(ctx)
		return nil, nil, err
	}
	return ac, got, nil
}

// conn is the transaction's connection, which handlers run statements on.
func (ac *applyConn) conn() *pgx.Conn { return ac.pooled.Conn() }

// commit runs last with args, unless args is empty, then COMMIT, in one
// round trip. A transaction that had failed before is rolled back by COMMIT,
// and commit says so with pgx.ErrTxCommitRollback.
func (ac *applyConn) commit(ctx context.Context, last string, args ...any) error {
	b := &pgx.Batch{}
	if len(args) > 0 {
		b.Queue(last, args...)
	}
	b.Queue("COMMIT")
	br := ac.conn().SendBatch(ctx, b)
	if len(args) > 0 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// leftUsable checks the transaction after a handler returned nil. A
// handler that drops the error of a failed statement leaves the
// transaction aborted, and one that returns before reading or closing a
// statement's rows leaves the connection busy. Either way every statement
// after it fails, the framework's own too, and COMMIT would roll back: a
// failure that looks like the database's and would be retried, with the
// whole run of messages, forever. Said here, it is the handler's, so its
// message takes the bounded retries and then the dead-letter topic. A
// connection that has closed is left for the commit to meet, as the
// database fault it is.
func (ac *applyConn) leftUsable() error {
	pc := ac.conn().PgConn()
	switch {
	case pc.IsClosed():
		return nil
	case pc.IsBusy():
		return errHandlerLeftBusy
	case pc.TxStatus() == 'E':
		return errHandlerLeftAborted
	}
	return nil
}

var (
	errHandlerLeftAborted = errors.New("the handler returned nil but left its transaction aborted: a statement failed and its error was not returned")
	errHandlerLeftBusy    = errors.New("the handler returned nil with a statement's results still unread: its rows or batch were not closed")
)

// release ends the transaction if it is still open, rolling it back, and
// returns the connection to the pool. The pool destroys a connection that
// is broken, busy or still in a transaction, so a failed rollback loses
// nothing but the connection.
func (ac *applyConn) release(ctx context.Context) {
	if pc := ac.conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = ac.conn().Exec(rctx, "ROLLBACK")
		cancel()
	}
	ac.pooled.Release()
}
