package relay

import "fmt"

// Lanes are how the relay batches without breaking per-aggregate order on
// Key_Shared subscriptions (docs/adr/0008).
//
// A Key_Shared subscription dispatches an entry whole, by the entry's
// ordering key when it has one, else by its key. A batch of several
// aggregates' events, placed by one of their keys, would reach a consumer
// that does not own the others: two consumers could then apply one order's
// events at once. So the relay routes every event not by its aggregate but
// by the aggregate's lane, one of laneCount, carried as the message's
// ordering key; the key stays the aggregate id, for consumers and
// compaction. All of an aggregate's events share its lane, so a consumer
// that owns a lane owns every aggregate in it, and a batch of one lane's
// events goes where each of them would go alone.
//
// Batches must also keep deduplication exact, which needs sequence ids to
// grow through each producer's stream. So each topic has a producer per
// lane, whose stream is the topic's events of that lane in commit order, and
// a batch is consecutive events of one producer.
//
// laneCount is part of the wire contract: changing it (or laneOf) moves
// aggregates between lanes, and events of one aggregate published on both
// sides of the change may be applied by two consumers at once until the
// older ones are consumed. It is large enough that Key_Shared spreads
// lanes over several consumers evenly enough (docs/performance.md, scale),
// and small enough that a drain fills batches: a lane's producer sees one
// event in laneCount.
const laneCount = 32

// laneKeys are the lanes' ordering keys: lane-00 to lane-31.
var laneKeys = func() (keys [laneCount]string) {
	for i := range keys {
		keys[i] = fmt.Sprintf("lane-%02d", i)
	}
	return keys
}()

// laneOf returns the lane of an aggregate: its id's 32-bit FNV-1a hash
// modulo laneCount.
func laneOf(aggregateID string) int {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(aggregateID); i++ {
		h ^= uint32(aggregateID[i])
		h *= prime
	}
	return int(h % laneCount)
}
