package relay

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpes/alpes/relay/pgsource"
)

// tracker decides what may be confirmed to Postgres: the end of the newest
// transaction whose messages, and those of every transaction before it, have
// broker receipts. Transactions enter in stream order (begin, add per message,
// seal at commit); receipts arrive from the Pulsar client's goroutines in any
// order across topics. All methods are safe for concurrent use.
type tracker struct {
	mu   sync.Mutex
	txs  []*txState // unconfirmed transactions, oldest first
	head int        // txs[:head] are confirmed and await compaction

	confirmed atomic.Uint64 // pgsource.LSN, read by the stream's goroutine
}

type txState struct {
	commitLSN  pgsource.LSN
	endLSN     pgsource.LSN
	commitTime time.Time
	pending    int  // messages without a receipt
	sealed     bool // its Commit has been seen
}

func newTracker(start pgsource.LSN) *tracker {
	t := &tracker{}
	t.confirmed.Store(uint64(start))
	return t
}

// Confirmed is the position safe to report to Postgres as flushed.
func (t *tracker) Confirmed() pgsource.LSN { return pgsource.LSN(t.confirmed.Load()) }

// begin opens a transaction.
func (t *tracker) begin(commitLSN pgsource.LSN, commitTime time.Time) *txState {
	tx := &txState{commitLSN: commitLSN, commitTime: commitTime}
	t.mu.Lock()
	t.txs = append(t.txs, tx)
	t.mu.Unlock()
	return tx
}

// add counts one more message of tx awaiting its receipt.
func (t *tracker) add(tx *txState) {
	t.mu.Lock()
	tx.pending++
	t.mu.Unlock()
}

// receipted records the broker's receipt of one message of tx.
func (t *tracker) receipted(tx *txState) {
	t.mu.Lock()
	tx.pending--
	t.advance()
	t.mu.Unlock()
}

// seal records tx's commit: once its messages are receipted, endLSN may be
// confirmed.
func (t *tracker) seal(tx *txState, endLSN pgsource.LSN) {
	t.mu.Lock()
	tx.endLSN, tx.sealed = endLSN, true
	t.advance()
	t.mu.Unlock()
}

// idle records a keepalive's server position, which may be confirmed once
// every transaction streamed before it is: at once when none awaits its
// receipts, else as soon as they have them. It must not be dropped while
// they wait: the stream asks for the next keepalive only when the confirmed
// position has reached the last one it received, so an idle source's slot
// would stay behind until a heartbeat. A keepalive inside a transaction
// says nothing of it and is ignored (the stream passes on none).
func (t *tracker) idle(serverWALEnd pgsource.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.txs); n > t.head && !t.txs[n-1].sealed {
		return
	}
	// An empty, sealed transaction ending at the server's position: it
	// follows the others through advance.
	t.txs = append(t.txs, &txState{endLSN: serverWALEnd, sealed: true})
	t.advance()
}

// oldestUnconfirmed returns the commit time of the oldest transaction not yet
// confirmed, and false when there is none.
func (t *tracker) oldestUnconfirmed() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head == len(t.txs) {
		return time.Time{}, false
	}
	return t.txs[t.head].commitTime, true
}

// advance confirms finished transactions at the front. Callers hold mu.
func (t *tracker) advance() {
	for t.head < len(t.txs) {
		tx := t.txs[t.head]
		if !tx.sealed || tx.pending > 0 {
			break
		}
		if tx.endLSN > t.Confirmed() {
			t.confirmed.Store(uint64(tx.endLSN))
		}
		t.txs[t.head] = nil
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.txs) {
		t.txs = append(t.txs[:0:0], t.txs[t.head:]...)
		t.head = 0
	}
}
