package broker

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Key_Shared follows Pulsar 4.0. An entry's sticky key (stickyKey) is
// hashed with Murmur3 (keyHash); the subscription's selector maps that
// hash into its range and names the consumer that receives it. The first
// consumer of a subscription without consumers chooses the selector:
//
//   - AUTO_SPLIT mode (the client's default): a consistent-hash ring with
//     Config.KeySharedRingPoints points per consumer, placed by the
//     consumer's name, so the same names own the same keys on every broker
//     configured alike (Pulsar's default is 100 points); or, when the broker is
//     configured so (Config.KeySharedAutoSplitRanges), halves of the range
//     split between consumers as they join.
//   - STICKY mode: the hash ranges each consumer declares, which must not
//     overlap; hashes outside all of them wait for a consumer.
//
// Later consumers must ask for the same mode. When consumers join or
// leave, hashes move; in AUTO_SPLIT mode the dispatcher then holds back a
// hash from its new owner while an earlier consumer still holds
// unacknowledged entries of it (subscription.keyHolds), as Pulsar's
// draining hashes do, unless the first consumer allowed out-of-order
// delivery.

// defaultRingPoints is Pulsar's default number of points per consumer on
// the consistent-hash ring (subscriptionKeySharedConsistentHashingReplicaPoints).
const defaultRingPoints = 100

var errKeyRanges = errors.New("invalid Key_Shared hash ranges")

// keySelector assigns the sticky-key hashes of a Key_Shared subscription
// to its consumers. Guarded by topic.mu.
type keySelector interface {
	// mode is the Key_Shared mode the selector serves.
	mode() wirev1.KeySharedMode
	// hash maps an entry's key hash into the selector's hash range.
	hash(keyHash uint32) uint32
	// owner returns the consumer that receives hash, or nil when no
	// consumer covers it.
	owner(hash uint32) *consumer
	// add gives c a share of the hashes. On error nothing changed.
	add(c *consumer) error
	// remove hands c's hashes to the remaining consumers.
	remove(c *consumer)
}

// keyShared is how a Key_Shared subscription places keys, as its first
// consumer asked.
type keyShared struct {
	keySelector
	// drain holds a hash back from a new owner while another consumer
	// holds unacknowledged entries of it.
	drain bool
}

// newKeyShared returns the selector Pulsar gives a subscription whose
// first consumer sent meta.
func newKeyShared(meta *wirev1.KeySharedMeta, cfg Config) *keyShared {
	ks := &keyShared{drain: !meta.GetAllowOutOfOrderDelivery()}
	switch {
	case meta.GetKeySharedMode() == wirev1.KeySharedMode_STICKY:
		// Sticky ranges never move between consumers: nothing to drain.
		ks.keySelector, ks.drain = &stickySelector{}, false
	case cfg.KeySharedAutoSplitRanges:
		ks.keySelector = &splitSelector{}
	default:
		ks.keySelector = &ringSelector{points: cfg.KeySharedRingPoints, index: map[*consumer]int{}}
	}
	return ks
}

// joinKeyShared gives cs its share of the hashes of a Key_Shared
// subscription and returns how the subscription places keys: as before
// while s has consumers (cs must then ask for the same mode), else as cs
// asks. s may be nil (a new subscription).
func joinKeyShared(s *subscription, cs *consumer, meta *wirev1.KeySharedMeta, cfg Config) (*keyShared, error) {
	sel := newKeyShared(meta, cfg)
	if s != nil && s.keys != nil && len(s.consumers) > 0 {
		if want := meta.GetKeySharedMode(); s.keys.mode() != want {
			return nil, fmt.Errorf("%w: subscription %q is Key_Shared in %s mode, not %s", errConsumerBusy, s.name, s.keys.mode(), want)
		}
		sel = s.keys
	}
	if meta.GetKeySharedMode() == wirev1.KeySharedMode_STICKY {
		for _, r := range meta.GetHashRanges() {
			cs.ranges = append(cs.ranges, slotRange{start: r.GetStart(), end: r.GetEnd(), consumer: cs})
		}
	}
	if err := sel.add(cs); err != nil {
		return nil, fmt.Errorf("%w: %w", errKeyAssign, err)
	}
	return sel, nil
}

// ringSelector is Pulsar's consistent-hashing selector. Each consumer puts
// points on a ring over [1, keySlots-1], at the hashes of its name, an
// index that tells apart consumers of the same name, and the point's
// number; a hash belongs to the consumer of the first point at or after
// it, wrapping around. When two points fall on the same hash, the consumer
// that joined first keeps it.
type ringSelector struct {
	points    int
	consumers []*consumer       // in order of arrival
	index     map[*consumer]int // the name index of each consumer
	ring      []ringPoint       // sorted by hash, one point per hash
}

type ringPoint struct {
	hash     uint32
	consumer *consumer
}

func (r *ringSelector) mode() wirev1.KeySharedMode { return wirev1.KeySharedMode_AUTO_SPLIT }

// hash maps into [1, keySlots-1]: Pulsar's ring leaves out 0, its "no
// hash" value.
func (r *ringSelector) hash(h uint32) uint32 { return h%(keySlots-1) + 1 }

func (r *ringSelector) owner(hash uint32) *consumer {
	if len(r.ring) == 0 {
		return nil
	}
	i := sort.Search(len(r.ring), func(i int) bool { return r.ring[i].hash >= hash })
	if i == len(r.ring) {
		i = 0
	}
	return r.ring[i].consumer
}

// add places c's points, with the lowest name index that no present
// consumer of the same name uses.
func (r *ringSelector) add(c *consumer) error {
	idx := 0
	for r.nameIndexUsed(c.name, idx) {
		idx++
	}
	r.index[c] = idx
	r.consumers = append(r.consumers, c)
	r.rebuild()
	return nil
}

func (r *ringSelector) nameIndexUsed(name string, idx int) bool {
	for _, o := range r.consumers {
		if o.name == name && r.index[o] == idx {
			return true
		}
	}
	return false
}

func (r *ringSelector) remove(c *consumer) {
	if _, ok := r.index[c]; !ok {
		return
	}
	delete(r.index, c)
	r.consumers = slices.DeleteFunc(r.consumers, func(o *consumer) bool { return o == c })
	r.rebuild()
}

// rebuild lays out the ring from scratch. Claiming points in order of
// arrival gives each contested point to its earliest present claimant,
// as Pulsar's incremental updates do.
func (r *ringSelector) rebuild() {
	claimed := make(map[uint32]bool, len(r.consumers)*r.points)
	r.ring = r.ring[:0]
	for _, c := range r.consumers {
		for i := range r.points {
			h := r.pointHash(c.name, r.index[c], i)
			if !claimed[h] {
				claimed[h] = true
				r.ring = append(r.ring, ringPoint{hash: h, consumer: c})
			}
		}
	}
	slices.SortFunc(r.ring, func(a, b ringPoint) int { return int(a.hash) - int(b.hash) })
}

// pointHash is where point i of a consumer lies: the ring's hash of the
// name, the name index and i, separated by NUL characters.
func (r *ringSelector) pointHash(name string, nameIndex, i int) uint32 {
	key := name + "\x00" + strconv.Itoa(nameIndex) + "\x00" + strconv.Itoa(i)
	return r.hash(keyHash([]byte(key)))
}

// splitSelector is Pulsar's auto-split hash-range selector. The first
// consumer owns the whole range; each later one takes the lower half of
// the largest range (the first of equals); a leaving consumer's range goes
// to the consumer above it, or, for the topmost range, to the one below.
type splitSelector struct {
	ranges []splitRange // by end
}

// splitRange covers the hashes above the previous range's end (or from 0)
// up to end, inclusive.
type splitRange struct {
	end      uint32
	consumer *consumer
}

func (s *splitSelector) mode() wirev1.KeySharedMode { return wirev1.KeySharedMode_AUTO_SPLIT }

func (s *splitSelector) hash(h uint32) uint32 { return rangeHash(h) }

func (s *splitSelector) owner(hash uint32) *consumer {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].end >= hash })
	if i == len(s.ranges) {
		return nil
	}
	return s.ranges[i].consumer
}

func (s *splitSelector) add(c *consumer) error {
	if len(s.ranges) == 0 {
		s.ranges = append(s.ranges, splitRange{end: keySlots, consumer: c})
		return nil
	}
	i, low := s.largest()
	end := s.ranges[i].end
	if end-low <= 1 {
		return fmt.Errorf("%w: no range left to split among %d consumers", errKeyRanges, len(s.ranges))
	}
	mid := end - (end-low)/2
	s.ranges = slices.Insert(s.ranges, i, splitRange{end: mid, consumer: c})
	return nil
}

// largest returns the index of the first largest range and the end of
// the range below it (0 for the lowest).
func (s *splitSelector) largest() (int, uint32) {
	best, bestLow, bestSize := 0, uint32(0), uint32(0)
	low := uint32(0)
	for i, r := range s.ranges {
		if r.end-low > bestSize {
			best, bestLow, bestSize = i, low, r.end-low
		}
		low = r.end
	}
	return best, bestLow
}

func (s *splitSelector) remove(c *consumer) {
	i := slices.IndexFunc(s.ranges, func(r splitRange) bool { return r.consumer == c })
	switch {
	case i < 0:
	case s.ranges[i].end == keySlots && i > 0:
		s.ranges[i].consumer = s.ranges[i-1].consumer
		s.ranges = slices.Delete(s.ranges, i-1, i)
	default:
		s.ranges = slices.Delete(s.ranges, i, i+1)
	}
}

// stickySelector is Pulsar's exclusive hash-range selector: each consumer
// owns the ranges it declared.
type stickySelector struct {
	ranges []slotRange // by start; they do not overlap
}

// slotRange is a sticky consumer's hash range, both ends inclusive.
type slotRange struct {
	start, end int32
	consumer   *consumer
}

func (r slotRange) overlaps(o slotRange) bool { return r.start <= o.end && o.start <= r.end }

func (s *stickySelector) mode() wirev1.KeySharedMode { return wirev1.KeySharedMode_STICKY }

func (s *stickySelector) hash(h uint32) uint32 { return rangeHash(h) }

func (s *stickySelector) owner(hash uint32) *consumer {
	h := int32(hash)
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].start > h })
	if i == 0 || s.ranges[i-1].end < h {
		return nil
	}
	return s.ranges[i-1].consumer
}

// add takes c's declared ranges (c.ranges), which must be well formed and
// free. When they are not free, the holder's connection is probed, as
// Pulsar checks its liveness, so that a dead holder does not keep them
// from the client's retry.
func (s *stickySelector) add(c *consumer) error {
	if err := validRanges(c.ranges); err != nil {
		return err
	}
	for _, r := range c.ranges {
		for _, o := range s.ranges {
			if r.overlaps(o) {
				if o.consumer.conn != c.conn {
					o.consumer.conn.probe()
				}
				return fmt.Errorf("%w: [%d, %d] overlaps the range of consumer %q", errKeyRanges, r.start, r.end, o.consumer.name)
			}
		}
	}
	s.ranges = append(s.ranges, c.ranges...)
	slices.SortFunc(s.ranges, func(a, b slotRange) int { return int(a.start) - int(b.start) })
	return nil
}

// validRanges checks one consumer's declared ranges: at least one, none
// reversed, none overlapping another.
func validRanges(rs []slotRange) error {
	if len(rs) == 0 {
		return fmt.Errorf("%w: sticky mode without ranges", errKeyRanges)
	}
	sorted := slices.SortedFunc(slices.Values(rs), func(a, b slotRange) int { return int(a.start) - int(b.start) })
	for i, r := range sorted {
		if r.start > r.end {
			return fmt.Errorf("%w: [%d, %d] starts after its end", errKeyRanges, r.start, r.end)
		}
		if i > 0 && sorted[i-1].overlaps(r) {
			return fmt.Errorf("%w: [%d, %d] and [%d, %d] overlap", errKeyRanges, sorted[i-1].start, sorted[i-1].end, r.start, r.end)
		}
	}
	return nil
}

func (s *stickySelector) remove(c *consumer) {
	s.ranges = slices.DeleteFunc(s.ranges, func(r slotRange) bool { return r.consumer == c })
}
