package broker

import (
	"slices"
	"sync"
	"time"

	"github.com/alpes/alpes/internal/pulsarwire"
)

// cursorSaveInterval is how often durable subscriptions' cursors are
// saved. Acknowledgements newer than the last save are redelivered after a
// crash: delivery is at least once, as with Pulsar.
const cursorSaveInterval = 100 * time.Millisecond

// committer is the group commit of a broker: SEND receipts wait in one
// queue, in order, while the commit loop syncs every store written since
// its last round with a single fsync each, then makes the entries readable
// and sends the receipts. Receipts that need no sync (duplicates) queue
// too, so that a connection's receipts keep their order.
type committer struct {
	mu     sync.Mutex
	queue  []commitItem
	signal chan struct{}
}

// commitItem is a receipt to send once entry id of topic t (if any) is
// durable. gen is the topic's log generation when the entry was appended:
// a failed sync rolls the log back and starts a new one, and the entries
// of the old generation are gone.
type commitItem struct {
	t       *topic // nil for a receipt that waits only for its turn
	id      int64
	gen     uint64
	conn    *conn
	receipt pulsarwire.SendReceipt
}

func (c *committer) enqueue(item commitItem) {
	c.mu.Lock()
	c.queue = append(c.queue, item)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// commitLoop runs the group commit and the periodic cursor saves until the
// broker closes; on a clean close it commits what is queued and saves the
// cursors one last time.
func (b *Broker) commitLoop() {
	saves := time.NewTicker(cursorSaveInterval)
	defer saves.Stop()
	for {
		select {
		case <-b.commits.signal:
			b.commitRound()
		case <-saves.C:
			b.saveCursors()
		case <-b.done:
			if !b.crashed.Load() {
				b.commitRound()
				b.saveCursors()
			}
			return
		}
	}
}

func (b *Broker) commitRound() {
	b.commits.mu.Lock()
	items := b.commits.queue
	b.commits.queue = nil
	b.commits.mu.Unlock()
	if len(items) == 0 {
		return
	}
	var synced, failed []*topic
	for _, it := range items {
		if it.t == nil || slices.Contains(synced, it.t) || slices.Contains(failed, it.t) {
			continue
		}
		if it.t.syncLog() {
			synced = append(synced, it.t)
		} else {
			failed = append(failed, it.t)
		}
	}
	// Receipts first, then delivery: a producer learns that its message is
	// stored no later than consumers see it. An entry a failed sync rolled
	// back gets no receipt; its producer's connection is closed, and the
	// client sends it again.
	for _, it := range items {
		if it.t != nil && !it.t.committed(it.id, it.gen) {
			continue
		}
		it.conn.sendReceipt(&it.receipt)
	}
	for _, t := range synced {
		t.mu.Lock()
		t.dispatchAll()
		t.mu.Unlock()
	}
}

// syncLog makes the topic's appended entries durable and reports whether
// it could. When the sync fails, nothing appended since the last
// successful one may be on disk, and no later sync can make it so (a
// failed fsync may have dropped the written pages): the topic rolls back.
func (t *topic) syncLog() bool {
	t.mu.Lock()
	end := t.store.end()
	t.mu.Unlock()
	err := t.store.sync()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.store.synced(end)
		return true
	}
	t.b.log.Error("syncing the topic log failed: rolling back what was not durable", "topic", t.name.String(), "err", err)
	t.rollBack()
	return false
}

// committed makes entry id durable and readable unless a rollback removed
// it since it was appended in generation gen, and reports which.
func (t *topic) committed(id int64, gen uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return false
	}
	t.madeDurable(id)
	return true
}

// saveCursors writes the cursors of every durable topic whose durable
// subscriptions changed since the last save.
func (b *Broker) saveCursors() {
	for _, t := range b.allTopics() {
		t.mu.Lock()
		if !t.cursorsDirty || !t.store.durable() || t.deleted {
			t.mu.Unlock()
			continue
		}
		t.cursorsDirty = false
		states := t.cursorStates()
		t.mu.Unlock()
		if err := t.store.saveCursors(states); err != nil {
			b.log.Error("saving cursors", "topic", t.name.String(), "err", err)
			t.mu.Lock()
			t.cursorsDirty = true
			t.mu.Unlock()
		}
	}
}

// cursorStates snapshots the durable subscriptions. Caller holds t.mu.
func (t *topic) cursorStates() []cursorState {
	var out []cursorState
	for _, s := range t.subs {
		if !s.durable {
			continue
		}
		cs := cursorState{Name: s.name, Type: int32(s.subType), MarkDelete: s.markDelete}
		for id := range s.acked {
			cs.Acked = append(cs.Acked, id)
		}
		slices.Sort(cs.Acked)
		out = append(out, cs)
	}
	return out
}
