package pulsarbroker

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// ringPointsPerConsumer is how many points each consumer puts on the
// consistent-hash ring of an auto-split Key_Shared subscription, as in
// Pulsar; more points spread keys more evenly.
const ringPointsPerConsumer = 100

// keySelector maps Key_Shared hash slots to consumers. Auto-split
// subscriptions use a consistent-hash ring, so a joining or leaving
// consumer moves only a share of the keys; sticky subscriptions use the
// hash ranges each consumer declared. Guarded by topic.mu.
type keySelector struct {
	ring   []ringPoint // sorted by slot
	sticky []slotRange // sticky mode: declared ranges
}

type ringPoint struct {
	slot     uint32
	consumer *consumer
}

type slotRange struct {
	start, end uint32 // inclusive
	consumer   *consumer
}

var errKeyRanges = errors.New("invalid Key_Shared hash ranges")

// stickyRanges validates the hash ranges of a sticky Key_Shared consumer
// against those already taken on the subscription.
func stickyRanges(meta *wirev1.KeySharedMeta, others []*consumer) ([]slotRange, error) {
	if meta.GetKeySharedMode() != wirev1.KeySharedMode_STICKY {
		for _, o := range others {
			if len(o.ranges) > 0 {
				return nil, fmt.Errorf("%w: auto-split consumer on a sticky subscription", errKeyRanges)
			}
		}
		return nil, nil
	}
	if len(meta.GetHashRanges()) == 0 {
		return nil, fmt.Errorf("%w: sticky mode without ranges", errKeyRanges)
	}
	var out []slotRange
	for _, r := range meta.GetHashRanges() {
		if r.GetStart() < 0 || r.GetEnd() < r.GetStart() || r.GetEnd() >= keySlots {
			return nil, fmt.Errorf("%w: [%d, %d]", errKeyRanges, r.GetStart(), r.GetEnd())
		}
		nr := slotRange{start: uint32(r.GetStart()), end: uint32(r.GetEnd())}
		for _, o := range others {
			if len(o.ranges) == 0 {
				return nil, fmt.Errorf("%w: sticky consumer on an auto-split subscription", errKeyRanges)
			}
			for _, or := range o.ranges {
				if nr.start <= or.end && or.start <= nr.end {
					return nil, fmt.Errorf("%w: [%d, %d] overlaps a range of consumer %q", errKeyRanges, nr.start, nr.end, o.name)
				}
			}
		}
		out = append(out, nr)
	}
	return out, nil
}

// rebuild recomputes the mapping for the given consumers.
func (k *keySelector) rebuild(consumers []*consumer) {
	k.ring, k.sticky = k.ring[:0], k.sticky[:0]
	for _, c := range consumers {
		for _, r := range c.ranges {
			r.consumer = c
			k.sticky = append(k.sticky, r)
		}
		if len(c.ranges) > 0 {
			continue
		}
		for i := range ringPointsPerConsumer {
			slot := keySlot(c.name + "-" + strconv.FormatUint(c.uid, 10) + "-" + strconv.Itoa(i))
			k.ring = append(k.ring, ringPoint{slot: slot, consumer: c})
		}
	}
	sort.SliceStable(k.ring, func(i, j int) bool { return k.ring[i].slot < k.ring[j].slot })
}

// owner returns the consumer owning slot, or nil when no consumer covers
// it (a sticky subscription whose ranges leave gaps).
func (k *keySelector) owner(slot uint32) *consumer {
	if len(k.sticky) > 0 {
		for _, r := range k.sticky {
			if slot >= r.start && slot <= r.end {
				return r.consumer
			}
		}
		return nil
	}
	if len(k.ring) == 0 {
		return nil
	}
	i := sort.Search(len(k.ring), func(i int) bool { return k.ring[i].slot >= slot })
	if i == len(k.ring) {
		i = 0
	}
	return k.ring[i].consumer
}
