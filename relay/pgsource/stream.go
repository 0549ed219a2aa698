package pgsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// StreamOptions configures Stream.
type StreamOptions struct {
	Slot        string
	Publication string
	// Start is where streaming starts: the slot's confirmed flush position.
	Start LSN
	// Confirmed returns the position every change before which has been
	// handled for good (published and receipted); it is reported to Postgres
	// as flushed. It must be safe to call from Stream's goroutine and must
	// never return less than Start.
	Confirmed func() LSN
	// StatusInterval is how often a standby status update is sent even when
	// nothing changed; it must be well below the server's wal_sender_timeout.
	// Default 10s.
	StatusInterval time.Duration
	// OnStatus, when set, is called after each standby status update with the
	// positions sent.
	OnStatus func(written, flushed LSN)
	// BeforeStatus, when set, is called before each standby status update
	// (fault tests crash the process there).
	BeforeStatus func()
	Logger       *slog.Logger
}

// Batch bounds: a batch is handed over once it holds MaxBatchChanges changes
// or MaxBatchBytes bytes of pgoutput data, whichever comes first. With a
// channel of capacity c, the stream holds at most (c+2) batches in memory.
const (
	MaxBatchChanges = 256
	MaxBatchBytes   = 256 << 10
)

// minBatchCap is the smallest capacity a batch starts with: room for a
// single-row transaction (Begin, Row, Commit) and one more change.
const minBatchCap = 4

// Stream starts logical replication on repl (a replication connection) and
// sends every decoded change to out, in stream order, until ctx ends or the
// connection fails.
//
// Changes travel in batches, one channel operation per batch rather than per
// change: a batch holds what was decoded from the messages already in the
// connection's read buffer, and is handed over as soon as reading on would
// have to wait for the network, or when it reaches MaxBatchChanges or
// MaxBatchBytes. A batch is never empty, and belongs to the receiver once
// sent. Stream keeps sending standby status updates while out is full, so a
// slow consumer never makes Postgres drop the connection.
func Stream(ctx context.Context, repl *pgconn.PgConn, opts StreamOptions, out chan<- []Change) error {
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	err := pglogrepl.StartReplication(ctx, repl, opts.Slot, opts.Start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names " + quoteLiteral(opts.Publication),
			"binary 'true'",   // bytea and uuid arrive as raw bytes, not hex text
			"messages 'true'", // heartbeats are transactional logical messages
		},
	})
	if err != nil {
		return fmt.Errorf("starting replication from slot %s at %s: %w", opts.Slot, opts.Start, err)
	}
	s := &stream{conn: repl, opts: opts, out: out, rels: newRelations(), written: opts.Start}
	return s.run(ctx)
}

type stream struct {
	conn       *pgconn.PgConn
	opts       StreamOptions
	out        chan<- []Change
	rels       *relations
	written    LSN // the newest position received
	inTx       bool
	nextStatus time.Time

	batch      []Change // decoded, not yet handed over
	batchBytes int      // pgoutput bytes behind batch
	timer      *time.Timer
}

func (s *stream) run(ctx context.Context) error {
	// Report the positions at once: until a status arrives the walsender
	// takes the write position for zero (see sendStatus).
	if err := s.sendStatus(ctx); err != nil {
		return err
	}
	deadline := newReadDeadline(ctx, s.conn.Conn())
	defer deadline.release()
	for {
		if !time.Now().Before(s.nextStatus) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
		}
		// Hand the batch over before the next receive can wait for the
		// network: a change is never held back while the stream is idle.
		if len(s.batch) > 0 && s.conn.Frontend().ReadBufferLen() == 0 {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := deadline.set(s.nextStatus); err != nil {
			return fmt.Errorf("setting the replication connection's read deadline: %w", err)
		}
		// Background: the read deadline, not a context, bounds the wait.
		msg, err := s.conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				// Time for a status update. The read buffer held part of a
				// message: hand over what is decoded before waiting again.
				if err := s.flush(ctx); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("receiving from the replication stream: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.handle(ctx, msg.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(msg))
		}
	}
}

func (s *stream) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parsing keepalive: %w", err)
		}
		if !s.inTx {
			s.written = max(s.written, ka.ServerWALEnd)
			if err := s.add(ctx, &Keepalive{ServerWALEnd: ka.ServerWALEnd}, len(data)); err != nil {
				return err
			}
		}
		if ka.ReplyRequested {
			return s.sendStatus(ctx)
		}
		return nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("parsing XLogData: %w", err)
		}
		return s.decode(ctx, xld.WALData)
	}
	return nil
}

// add appends c, decoded from size bytes of the stream, to the batch, and
// hands the batch over when it is full.
func (s *stream) add(ctx context.Context, c Change, size int) error {
	if s.batch == nil {
		s.batch = make([]Change, 0, minBatchCap)
	}
	s.batch = append(s.batch, c)
	s.batchBytes += size
	if len(s.batch) >= MaxBatchChanges || s.batchBytes >= MaxBatchBytes {
		return s.flush(ctx)
	}
	return nil
}

// flush hands the batch, if any, to the consumer.
func (s *stream) flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	if err := s.emit(ctx, s.batch); err != nil {
		return err
	}
	// The next batch starts at the length this one reached, so that a steady
	// stream allocates one slice per batch and never regrows it, while a
	// trickle of small transactions (three changes each) allocates small
	// slices: sizing by capacity kept every later batch at 4 KiB once a
	// backlog had filled one, whatever it carried.
	next := min(max(len(s.batch), minBatchCap), MaxBatchChanges)
	s.batch, s.batchBytes = make([]Change, 0, next), 0
	return nil
}

func (s *stream) decode(ctx context.Context, wal []byte) error {
	msg, err := parseMessage(wal)
	if err != nil {
		return fmt.Errorf("parsing pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		s.rels.add(m)
	case *pglogrepl.BeginMessage:
		s.inTx = true
		return s.add(ctx, &Begin{CommitLSN: m.FinalLSN, CommitTime: m.CommitTime, Xid: m.Xid}, len(wal))
	case *pglogrepl.InsertMessage:
		ok, err := s.rels.isOutbox(m.RelationID)
		if err != nil {
			return err
		}
		if ok {
			return s.add(ctx, s.rels.decodeRow(m.RelationID, m.Tuple), len(wal))
		}
	case *pglogrepl.CommitMessage:
		s.inTx = false
		s.written = max(s.written, m.TransactionEndLSN)
		return s.add(ctx, &Commit{CommitLSN: m.CommitLSN, EndLSN: m.TransactionEndLSN, CommitTime: m.CommitTime}, len(wal))
	}
	// Updates, deletes and truncates are not published (publish = 'insert');
	// logical messages (heartbeats) matter only for the transaction around them.
	return nil
}

// emit hands batch to the consumer, sending status updates while it waits.
func (s *stream) emit(ctx context.Context, batch []Change) error {
	select {
	case s.out <- batch: // the consumer keeps up: no timer needed
		return nil
	default:
	}
	if s.timer == nil {
		s.timer = time.NewTimer(time.Until(s.nextStatus))
	} else {
		s.timer.Reset(time.Until(s.nextStatus))
	}
	defer s.timer.Stop()
	for {
		select {
		case s.out <- batch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-s.timer.C:
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			s.timer.Reset(time.Until(s.nextStatus))
		}
	}
}

// noWritePosition is the write position every status reports: the largest
// LSN, which the walsender can never read past. A logical client writes no
// WAL, and Postgres uses the figure only to show it (pg_stat_replication's
// write_lsn and write_lag), to release commits waiting for a synchronous
// standby under synchronous_commit = remote_write, and to decide, each time
// it is about to wait for WAL, whether to send the client a keepalive: it
// sends one whenever the reported write and flush positions are both behind
// what it has read. Every commit anywhere in the cluster, in any database,
// makes each walsender read and wait again, so honest positions reported
// once a second cost the relay a keepalive or two per commit of the whole
// cluster on each of its slots, each one a wake-up for nothing (docs/relay.md,
// "Confirm"). The flush and apply positions stay exact: they alone move the
// slot.
const noWritePosition = LSN(math.MaxUint64)

// errZeroFlush guards the one mistake that would lose data silently:
// pglogrepl replaces a zero flush position with the write position.
var errZeroFlush = errors.New("refusing to send a standby status with flush position 0")

func (s *stream) sendStatus(ctx context.Context) error {
	if s.opts.BeforeStatus != nil {
		s.opts.BeforeStatus()
	}
	flushed := s.opts.Confirmed()
	if flushed == 0 {
		return errZeroFlush
	}
	written := max(s.written, flushed)
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: noWritePosition,
		WALFlushPosition: flushed,
		WALApplyPosition: flushed,
		ClientTime:       time.Now(),
		// Caught up: ask for a keepalive, whose server position lets an idle
		// source's confirmed position follow the WAL within one interval.
		ReplyRequested: flushed >= written && !s.inTx,
	})
	if err != nil {
		return fmt.Errorf("sending standby status: %w", err)
	}
	s.nextStatus = time.Now().Add(s.opts.StatusInterval)
	if s.opts.OnStatus != nil {
		s.opts.OnStatus(written, flushed)
	}
	return nil
}

// readDeadline drives the replication connection's read deadline directly,
// instead of giving every receive a context: pgconn arms a context watcher
// (context.AfterFunc and its teardown) for every call made with a context
// other than context.Background, which cost about 6 % of the relay's CPU
// at one message per call. The deadline is set once per status interval, and
// ending ctx moves it to the past so that a blocked read returns at once.
type readDeadline struct {
	conn net.Conn
	stop func() bool

	mu    sync.Mutex
	ended bool      // ctx has ended: the deadline stays in the past
	at    time.Time // the deadline set last
}

func newReadDeadline(ctx context.Context, conn net.Conn) *readDeadline {
	d := &readDeadline{conn: conn}
	d.stop = context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.ended = true
		_ = d.conn.SetReadDeadline(time.Unix(1, 0))
	})
	return d
}

// set makes reads time out at at, unless ctx has ended.
func (d *readDeadline) set(at time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended || d.at.Equal(at) {
		return nil
	}
	d.at = at
	return d.conn.SetReadDeadline(at)
}

// release stops watching ctx and clears the deadline, leaving the connection
// as pgconn expects to find it.
func (d *readDeadline) release() {
	d.stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.conn.SetReadDeadline(time.Time{})
}
