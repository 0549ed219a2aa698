package relay

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpes/alpes/relay/pgsource"
)

// sourceStats is what a source runner knows about itself, for /v1/lag and
// /metrics. Its fields are safe for concurrent use.
type sourceStats struct {
	mu        sync.Mutex
	st        string
	lastErr   string
	walLSN    pgsource.LSN // pg_current_wal_lsn() at the last refresh
	refreshed time.Time

	slot         atomic.Pointer[pgsource.SlotState]
	tracker      atomic.Pointer[tracker] // of the streaming session, nil otherwise
	reported     atomic.Uint64           // the flush position last sent to Postgres
	published    atomic.Int64            // receipted as new by the broker
	duplicates   atomic.Int64            // receipted as duplicates (ledger and entry -1)
	quarantined  atomic.Int64
	entries      atomic.Int64 // entries sent to the broker: a batch, or a message alone
	inFlight     atomic.Int64 // messages sent and awaiting receipts
	failures     atomic.Int64 // sessions that ended in an error and were retried
	swept        atomic.Int64 // outbox rows deleted by the retention sweep
	sweepBatches atomic.Int64 // DELETE transactions the retention sweep ran
	lastPublish  atomic.Int64 // unix nanoseconds of the newest receipt
	lastCommit   atomic.Int64 // unix nanoseconds (local clock) of the newest commit seen
}

func newSourceStats() *sourceStats {
	s := &sourceStats{st: StateStarting}
	s.lastCommit.Store(time.Now().UnixNano())
	return s
}

func (s *sourceStats) setState(state string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st, s.lastErr = state, ""
	if err != nil {
		s.lastErr = err.Error()
	}
}

func (s *sourceStats) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *sourceStats) observeCommit(time.Time) { s.lastCommit.Store(time.Now().UnixNano()) }

func (s *sourceStats) lastCommitTime() time.Time { return time.Unix(0, s.lastCommit.Load()) }

// refreshSlot reads the slot's state and the current WAL position.
func (s *sourceStats) refreshSlot(ctx context.Context, db pgsource.Querier, slot string) error {
	state, err := pgsource.ReadSlot(ctx, db, slot)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.walLSN, s.refreshed = state.CurrentWALLSN, time.Now()
	s.mu.Unlock()
	s.slot.Store(&state)
	return nil
}

// SourceLag is one source's replication state, as GET /v1/lag reports it.
type SourceLag struct {
	Source string `json:"source"`
	Slot   string `json:"slot"`
	// State is starting, streaming, waiting, lost, stopped or error.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// CurrentWALLSN is the source's WAL position at the last refresh (≤ 1 s old).
	CurrentWALLSN string `json:"current_wal_lsn"`
	// ConfirmedFlushLSN is the newest position confirmed as published: the
	// relay's own when it streams, else the slot's.
	ConfirmedFlushLSN string `json:"confirmed_flush_lsn"`
	RestartLSN        string `json:"restart_lsn"`
	// BytesBehind is CurrentWALLSN − ConfirmedFlushLSN: WAL not yet published.
	BytesBehind int64 `json:"bytes_behind"`
	// SecondsBehind is now − the commit time of the oldest transaction not yet
	// confirmed; 0 when the relay has caught up.
	SecondsBehind     float64    `json:"seconds_behind"`
	LastPublishTime   *time.Time `json:"last_publish_time"`
	MessagesPublished int64      `json:"messages_published"`
	DuplicatesDropped int64      `json:"duplicates_dropped"`
	// EntriesSent counts the entries the relay sent to the broker: a batch
	// of messages of one producer, or a message alone. Messages sent ÷
	// entries is how much the relay batches.
	EntriesSent int64 `json:"entries_sent"`
	Quarantined int64 `json:"quarantined"`
	OutboxSwept int64 `json:"outbox_swept"`
	// OutboxSweepBatches counts the sweep's DELETE transactions, each of at
	// most SweepBatch rows; every sweep ends with one that deletes fewer.
	OutboxSweepBatches int64 `json:"outbox_sweep_batches"`
	InFlight           int64 `json:"in_flight"`
	// SessionFailures counts the streaming sessions that ended in an error
	// the relay retries: a reset connection, a broker that closed a
	// producer, a database that went away. Each is healed by streaming
	// again from the confirmed position; a rising count is worth a look.
	SessionFailures int64 `json:"session_failures"`
	// WALStatus and SafeWALSize come from pg_replication_slots; SafeWALSize is
	// null when max_slot_wal_keep_size is unlimited.
	WALStatus   string `json:"wal_status"`
	SafeWALSize *int64 `json:"safe_wal_size"`
}

func (s *sourceStats) lag(cfg SourceConfig, now time.Time) SourceLag {
	s.mu.Lock()
	l := SourceLag{Source: cfg.Name, Slot: cfg.Slot, State: s.st, Error: s.lastErr}
	wal := s.walLSN
	s.mu.Unlock()

	confirmed := pgsource.LSN(0)
	if slot := s.slot.Load(); slot != nil && slot.Exists {
		confirmed = slot.ConfirmedFlushLSN
		l.RestartLSN = slot.RestartLSN.String()
		l.WALStatus = slot.WALStatus
		if slot.SafeWALSize >= 0 {
			safe := slot.SafeWALSize
			l.SafeWALSize = &safe
		}
	}
	if tr := s.tracker.Load(); tr != nil {
		confirmed = max(confirmed, tr.Confirmed())
		if oldest, ok := tr.oldestUnconfirmed(); ok {
			l.SecondsBehind = max(0, now.Sub(oldest).Seconds())
		}
	}
	l.ConfirmedFlushLSN = confirmed.String()
	l.CurrentWALLSN = wal.String()
	if wal > confirmed && confirmed > 0 {
		l.BytesBehind = int64(wal - confirmed)
	}
	if ns := s.lastPublish.Load(); ns > 0 {
		t := time.Unix(0, ns).UTC()
		l.LastPublishTime = &t
	}
	l.MessagesPublished = s.published.Load()
	l.DuplicatesDropped = s.duplicates.Load()
	l.EntriesSent = s.entries.Load()
	l.Quarantined = s.quarantined.Load()
	l.InFlight = s.inFlight.Load()
	l.SessionFailures = s.failures.Load()
	l.OutboxSwept = s.swept.Load()
	l.OutboxSweepBatches = s.sweepBatches.Load()
	return l
}
