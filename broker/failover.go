package broker

import (
	"sort"
	"strconv"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// failoverRingPoints is how many points each consumer puts on the ring
// that picks a non-partitioned topic's Failover consumer, as in Pulsar.
const failoverRingPoints = 100

// chooseActive picks the consumer that receives, as Pulsar does. Exclusive:
// the only consumer. Failover: among the consumers of the best (lowest)
// priority level, ordered by name, the one at the partition index modulo
// their number for a partition; for a non-partitioned topic, the owner of
// the topic name's hash on a ring where each consumer has points hashed
// from its name. Caller holds topic.mu.
func (s *subscription) chooseActive() *consumer {
	if len(s.consumers) == 0 {
		return nil
	}
	if s.subType == wirev1.CommandSubscribe_Exclusive {
		return s.consumers[0]
	}
	best := make([]*consumer, len(s.consumers))
	copy(best, s.consumers)
	sortConsumers(best)
	n := 1
	for n < len(best) && best[n].priority == best[0].priority {
		n++
	}
	best = best[:n]
	if s.topic.partition >= 0 {
		return best[int(s.topic.partition)%n]
	}
	return best[failoverRingOwner(s.topic.name.String(), best)]
}

// failoverRingOwner returns the index in consumers of the owner of topic
// on the consumers' hash ring: the first point at or after the topic's
// hash, wrapping around. Where two points collide, the later consumer's
// wins.
func failoverRingOwner(topic string, consumers []*consumer) int {
	type point struct {
		hash  uint32
		owner int
	}
	points := make([]point, 0, len(consumers)*failoverRingPoints)
	for i, c := range consumers {
		for j := range failoverRingPoints {
			points = append(points, point{positiveHash(c.name + strconv.Itoa(j)), i})
		}
	}
	sort.SliceStable(points, func(a, b int) bool { return points[a].hash < points[b].hash })
	h := positiveHash(topic)
	k := sort.Search(len(points), func(i int) bool { return points[i].hash >= h })
	if k == len(points) {
		k = 0
	}
	// Among points with the same hash, the last one placed owns it.
	for k+1 < len(points) && points[k+1].hash == points[k].hash {
		k++
	}
	return points[k].owner
}

// positiveHash is Murmur3 of s with the sign bit cleared, the hash Pulsar
// puts on its rings.
func positiveHash(s string) uint32 { return murmur3([]byte(s)) & 0x7fffffff }
