package broker

// Retention of an in-memory topic. Like Pulsar without a retention
// policy, the broker drops entries that every subscription has
// acknowledged, so a long-running development broker does not grow
// without bound; unlike Pulsar, it keeps the newest keptEntries entries
// anyway, so a reader started from the earliest position still sees
// recent history. A topic without subscriptions keeps everything. Durable
// topics keep every entry on disk (and their index in memory).

const (
	keptEntries = 1000
	trimBatch   = 1024 // trim only when at least this many entries can go
)

// trim drops the entries below every subscription's cursor. Caller holds
// t.mu.
func (t *topic) trim() {
	if t.store.durable() || len(t.subs) == 0 {
		return
	}
	low := t.readable - keptEntries
	for _, s := range t.subs {
		low = min(low, s.markDelete+1)
	}
	if low-t.firstID < trimBatch {
		return
	}
	n := int(low - t.firstID)
	for _, e := range t.entries[:n] {
		t.storageSize -= e.storedBytes()
	}
	// Copy the survivors so the dropped entries' array can be collected.
	t.entries = append([]*entry(nil), t.entries[n:]...)
	t.firstID = low
}
