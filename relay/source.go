package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/relay/pgsource"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// States of a source, as /v1/lag reports them.
const (
	StateStarting  = "starting"
	StateWaiting   = "waiting"   // another relay instance holds the source
	StateStreaming = "streaming" // this instance streams the source
	StateLost      = "lost"      // the slot is gone or invalidated; the source is stopped
	StateStopped   = "stopped"   // a topic it publishes to does not deduplicate, or the broker is ahead of the source; the source is stopped
	StateError     = "error"     // the last attempt failed; retrying
)

// sourceRunner serves one source: it waits for the source's advisory lock,
// then streams until something fails, and starts over after a backoff. Only
// a lost slot, a topic without deduplication, a broker that holds events
// from further in the stream than the source has written, or an error that
// cannot heal (see cannotHeal) stops it for good.
type sourceRunner struct {
	cfg    SourceConfig
	relay  *Config
	log    *slog.Logger
	stats  *sourceStats
	lockID int64
}

func newSourceRunner(cfg SourceConfig, relay *Config) *sourceRunner {
	h := fnv.New64a()
	h.Write([]byte("alpes.relay/" + cfg.Slot))
	return &sourceRunner{
		cfg:    cfg,
		relay:  relay,
		log:    relay.Logger.With("source", cfg.Name, "slot", cfg.Slot),
		stats:  newSourceStats(),
		lockID: int64(h.Sum64()),
	}
}

// run serves the source until ctx ends (nil), its slot is lost (ErrSlotLost),
// a topic it would publish to does not deduplicate (ErrDeduplicationOff) or
// the broker is ahead of the source's stream (ErrStreamBehindBroker).
func (s *sourceRunner) run(ctx context.Context) error {
	var retry retryDelay
	for {
		reported := s.stats.reported.Load()
		err := s.attempt(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, pgsource.ErrSlotLost) {
			s.stats.setState(StateLost, err)
			s.log.Error("source stopped: its replication slot is lost; events may be missing", "err", err)
			return err
		}
		if errors.Is(err, ErrDeduplicationOff) || errors.Is(err, ErrStreamBehindBroker) || cannotHeal(err) {
			s.stats.setState(StateStopped, err)
			s.log.Error("source stopped: " + err.Error())
			return err
		}
		s.stats.setState(StateError, err)
		s.stats.failures.Add(1)
		backoff := retry.next(s.stats.reported.Load() > reported)
		s.log.Warn("streaming stopped; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// The delays between a source's sessions: from minRetryDelay, doubling
// while sessions fail without progress, to at most maxRetryDelay.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 5 * time.Second
)

// retryDelay says how long to wait before the next session. A session that
// confirmed a new position to Postgres made progress: whatever ended it
// (a reset connection, a broker that closed the producer) is not a failure
// that repeats, so the next one starts promptly. Sessions that fail without
// progress back off, up to maxRetryDelay, so that a source whose broker or
// database is down for long is retried every few seconds, not hammered, and
// resumes within maxRetryDelay of its return.
type retryDelay struct{ last time.Duration }

func (r *retryDelay) next(progressed bool) time.Duration {
	switch {
	case progressed || r.last == 0:
		r.last = minRetryDelay
	default:
		r.last = min(2*r.last, maxRetryDelay)
	}
	return r.last
}

// cannotHeal reports whether err is one that retrying cannot cure, so that
// the source stops at once and says why: the source database is not ready
// for the relay (no publication, wal_level, no REPLICATION), or refuses the
// relay's login (an authentication or authorisation error, SQLSTATE class
// 28), or does not exist (3D000). An unreachable server, a fail-over or a
// broker away heal, and are retried.
func cannotHeal(err error) bool {
	if errors.Is(err, pgsource.ErrPreflight) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000")
}

// attempt takes the source's lock and streams until something fails.
func (s *sourceRunner) attempt(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("connecting to the source: %w", err)
	}
	defer conn.Close(context.Background())
	if err := s.acquireLock(ctx, conn); err != nil {
		return err
	}
	warnings, err := pgsource.Preflight(ctx, conn, s.cfg.Publication)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		s.log.Warn("preflight: " + w)
	}
	return s.stream(ctx, conn)
}

// acquireLock waits until this instance holds the source's advisory lock,
// which it keeps for as long as conn lives. While it waits, it reports the
// slot's state so a standby's /v1/lag is as useful as the active one's.
func (s *sourceRunner) acquireLock(ctx context.Context, conn *pgx.Conn) error {
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, s.lockID).Scan(&got); err != nil {
			return fmt.Errorf("taking the source lock: %w", err)
		}
		if got {
			return nil
		}
		if s.stats.state() != StateWaiting {
			s.log.Info("another relay instance streams this source; waiting")
		}
		s.stats.setState(StateWaiting, nil)
		if err := s.stats.refreshSlot(ctx, conn, s.cfg.Slot); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.LockPollInterval):
		}
	}
}

// stream runs one streaming session: slot, producers' client, stream, pipeline
// and keeper, until one of them fails.
func (s *sourceRunner) stream(ctx context.Context, conn *pgx.Conn) error {
	replCfg, err := pgconn.ParseConfig(s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("parsing the source DSN: %w", err)
	}
	replCfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, replCfg)
	if err != nil {
		return fmt.Errorf("opening a replication connection: %w", err)
	}
	defer repl.Close(context.Background())
	identity, err := pgsource.Identify(ctx, repl)
	if err != nil {
		return err
	}

	slot, created, err := pgsource.EnsureSlot(ctx, conn, repl, s.cfg.Slot, pgsource.SlotOptions{StartFresh: s.cfg.StartFresh})
	if err != nil {
		return err
	}
	if created {
		s.log.Info("created replication slot", "at", slot.ConfirmedFlushLSN)
	}
	if err := s.stats.refreshSlot(ctx, conn, s.cfg.Slot); err != nil {
		return fmt.Errorf("reading the slot: %w", err)
	}

	// Runs last, after the client has closed: what is still in flight is
	// abandoned with the session, to be streamed again.
	defer s.stats.inFlight.Store(0)
	client, err := pulsarsend.NewClient(s.relay.sender)
	if err != nil {
		return fmt.Errorf("creating the Pulsar client: %w", err)
	}
	defer client.Close()

	// The quarantine topic first: any row may need it.
	guard := newDedupGuard(s.relay.admin, s.relay.AllowNoDedup, s.log)
	if err := guard.check(ctx, s.cfg.QuarantineTopic); err != nil {
		return err
	}

	tr := newTracker(slot.ConfirmedFlushLSN)
	pub := newPublisher(client, s.cfg.Name, identity, s.cfg.MaxInFlight, s.cfg.MaxMessageBytes, s.stats)
	pub.failpoints = s.relay.Failpoints
	defer pub.close()
	// The tracker stays after the session until the next one's replaces it:
	// what it had not confirmed is still unconfirmed, and /v1/lag keeps
	// counting seconds behind while sessions fail (a broker away).
	s.stats.tracker.Store(tr)

	s.stats.setState(StateStreaming, nil)
	s.log.Info("streaming", "from", slot.ConfirmedFlushLSN, "identity", identity.String(), "stream", pub.stream)
	// Batches of up to pgsource.MaxBatchChanges changes or MaxBatchBytes of
	// WAL: a few in the channel keep the stream reading while the pipeline
	// publishes, and bound what the session holds besides the in-flight
	// messages.
	changes := make(chan []pgsource.Change, 4)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return pgsource.Stream(gctx, repl, pgsource.StreamOptions{
			Slot:           s.cfg.Slot,
			Publication:    s.cfg.Publication,
			Start:          slot.ConfirmedFlushLSN,
			Confirmed:      tr.Confirmed,
			StatusInterval: s.cfg.StatusInterval,
			OnStatus:       func(_, flushed pgsource.LSN) { s.stats.reported.Store(uint64(flushed)) },
			BeforeStatus:   func() { s.relay.Failpoints.Hit("relay/before-confirm") },
			Logger:         s.log,
		}, changes)
	})
	g.Go(func() error {
		p := &pipeline{source: s, pub: pub, tracker: tr, dedup: guard}
		return p.run(gctx, changes)
	})
	g.Go(func() error { return s.keep(gctx, conn) })
	return g.Wait()
}

// keep watches the lock connection (losing it means another instance may take
// over, so streaming must stop), refreshes the slot's state for /v1/lag,
// writes a heartbeat into an idle source's WAL and sweeps the outbox.
func (s *sourceRunner) keep(ctx context.Context, conn *pgx.Conn) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastHeartbeat := time.Now()
	nextSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := s.stats.refreshSlot(ctx, conn, s.cfg.Slot); err != nil {
			return fmt.Errorf("lost the source connection that holds the lock: %w", err)
		}
		idle := time.Since(s.stats.lastCommitTime())
		if idle >= s.cfg.HeartbeatInterval && time.Since(lastHeartbeat) >= s.cfg.HeartbeatInterval {
			if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(true, 'alpes.relay.heartbeat', $1)`, s.cfg.Name); err != nil {
				return fmt.Errorf("writing a heartbeat: %w", err)
			}
			lastHeartbeat = time.Now()
		}
		if s.cfg.OutboxRetention > 0 && !time.Now().Before(nextSweep) {
			n, err := sweep(ctx, conn, s.cfg.OutboxRetention, s.cfg.SweepBatch, s.stats)
			if err != nil {
				return err
			}
			if n > 0 {
				s.log.Info("swept the outbox", "deleted", n, "retention", s.cfg.OutboxRetention)
			}
			nextSweep = time.Now().Add(s.cfg.SweepInterval)
		}
	}
}
