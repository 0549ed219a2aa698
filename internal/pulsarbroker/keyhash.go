package pulsarbroker

import (
	"encoding/binary"
	"math/bits"
)

// keySlots is the size of Key_Shared's hash space, the range that
// consumers' hash ranges cover ([0, 65535], as in Pulsar).
const keySlots = 1 << 16

// keySlot returns the Key_Shared hash slot of a key: Murmur3 (32-bit,
// seed 0) of its bytes modulo 65536, the hash Pulsar uses, so that sticky
// hash ranges chosen by clients select the same keys as on real Pulsar.
func keySlot(key string) uint32 { return murmur3([]byte(key)) % keySlots }

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
