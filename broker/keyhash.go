package broker

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"

	"github.com/alpes/alpes/internal/pulsarwire"
)

// keySlots is the size of Key_Shared's hash space (Pulsar's
// StickyKeyConsumerSelector.DEFAULT_RANGE_SIZE): hash ranges, sticky or
// split, lie in [0, keySlots-1].
const keySlots = 1 << 16

// stickyKeyScratch is room enough for most sticky keys built from a
// producer name and a sequence id, so that stickyKey can build them in a
// caller's array rather than on the heap.
const stickyKeyScratch = 64

// stickyKey returns the bytes that place an entry on a Key_Shared
// subscription, chosen as Pulsar chooses them: the ordering key when set,
// else the partition key (base64-decoded when the producer says it is
// encoded), else the producer name and sequence id, so that keyless
// messages spread over the consumers. Pulsar hashes "NONE_KEY" when the
// producer name or sequence id is missing too, but both are required
// fields: metadata without them never gets this far. A key stickyKey
// builds is appended to dst; the one it returns may be dst's or md's.
func stickyKey(dst []byte, md *pulsarwire.MetadataSummary) []byte {
	switch {
	case md.HasOrderingKey:
		return md.OrderingKey
	case md.HasPartitionKey:
		if md.PartitionKeyB64Encoded {
			if b, err := base64.StdEncoding.AppendDecode(dst, md.PartitionKey); err == nil {
				return b
			}
		}
		return md.PartitionKey
	}
	dst = append(append(dst, md.ProducerName...), '-')
	return strconv.AppendInt(dst, int64(md.SequenceID), 10)
}

// keyHash is Pulsar's Murmur3_32Hash of key: MurmurHash3 (x86, 32-bit,
// seed 0) with the sign bit cleared, so that it is a non-negative Java
// int. Each Key_Shared selector maps it into its own hash range.
func keyHash(key []byte) uint32 { return murmur3(key) & math.MaxInt32 }

// rangeHash maps a key hash into [1, keySlots-1] as Pulsar's hash-range
// selectors (auto-split and sticky) do: modulo the range size, with 0,
// which Pulsar reserves for "no hash", taken as 1.
func rangeHash(h uint32) uint32 { return max(h%keySlots, 1) }

// murmur3 is MurmurHash3's x86 32-bit variant with seed 0.
func murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
		data = data[4:]
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
