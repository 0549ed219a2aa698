package pgsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Stream starts logical replication on repl (a replication connection) and
// sends every decoded change to out, in stream order, until ctx ends or the
// connection fails. It keeps sending standby status updates while out is
// full, so a slow consumer never makes Postgres drop the connection.
func Stream(ctx context.Context, repl *pgconn.PgConn, opts StreamOptions, out chan<- Change) error {
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
	out        chan<- Change
	rels       *relations
	written    LSN // the newest position received
	inTx       bool
	nextStatus time.Time
}

func (s *stream) run(ctx context.Context) error {
	s.nextStatus = time.Now().Add(s.opts.StatusInterval)
	var receive deadlineContext
	defer receive.release()
	for {
		if !time.Now().Before(s.nextStatus) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
		}
		msg, err := s.conn.ReceiveMessage(receive.until(ctx, s.nextStatus))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue // time for a status update
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
			if err := s.emit(ctx, &Keepalive{ServerWALEnd: ka.ServerWALEnd}); err != nil {
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

func (s *stream) decode(ctx context.Context, wal []byte) error {
	msg, err := pglogrepl.Parse(wal)
	if err != nil {
		return fmt.Errorf("parsing pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		s.rels.add(m)
	case *pglogrepl.BeginMessage:
		s.inTx = true
		return s.emit(ctx, &Begin{CommitLSN: m.FinalLSN, CommitTime: m.CommitTime, Xid: m.Xid})
	case *pglogrepl.InsertMessage:
		ok, err := s.rels.isOutbox(m.RelationID)
		if err != nil {
			return err
		}
		if ok {
			return s.emit(ctx, s.rels.decodeRow(m.RelationID, m.Tuple))
		}
	case *pglogrepl.CommitMessage:
		s.inTx = false
		s.written = max(s.written, m.TransactionEndLSN)
		return s.emit(ctx, &Commit{CommitLSN: m.CommitLSN, EndLSN: m.TransactionEndLSN, CommitTime: m.CommitTime})
	}
	// Updates, deletes and truncates are not published (publish = 'insert');
	// logical messages (heartbeats) matter only for the transaction around them.
	return nil
}

// emit hands c to the consumer, sending status updates while it waits.
func (s *stream) emit(ctx context.Context, c Change) error {
	for {
		timer := time.NewTimer(time.Until(s.nextStatus))
		select {
		case s.out <- c:
			timer.Stop()
			return nil
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
		}
	}
}

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
		WALWritePosition: written,
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

// deadlineContext hands out one context per deadline, not one per message:
// creating a context for every message received was a measurable share of
// the relay's CPU.
type deadlineContext struct {
	ctx    context.Context
	cancel context.CancelFunc
	at     time.Time
}

// until returns a context of parent that ends at at.
func (d *deadlineContext) until(parent context.Context, at time.Time) context.Context {
	if d.ctx == nil || !d.at.Equal(at) {
		d.release()
		d.ctx, d.cancel = context.WithDeadline(parent, at)
		d.at = at
	}
	return d.ctx
}

func (d *deadlineContext) release() {
	if d.cancel != nil {
		d.cancel()
	}
}
