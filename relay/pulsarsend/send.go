package pulsarsend

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/encoding/protowire"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// The SEND frame is encoded by hand, field by field, straight into the
// writer's scratch buffer: no protobuf structs, one KeyValue each, to build
// and throw away per message. Fields go in field-number order, as a
// protobuf encoder writes them, so the bytes match what pulsar-client-go
// sends for the same message but for the order of the properties (a map's).
//
//	[u32 total][u32 cmdSize][BaseCommand{type: SEND, send: {producer_id, sequence_id}}]
//	[u16 0x0e01][u32 crc32c][u32 mdSize][MessageMetadata][payload]

const magicChecksum = 0x0e01

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MessageMetadata and BaseCommand field numbers (wire.proto).
const (
	mdProducerName     = 1
	mdSequenceID       = 2
	mdPublishTime      = 3
	mdProperties       = 4
	mdPartitionKey     = 6
	mdUncompressedSize = 9
	mdEventTime        = 12

	kvKey   = 1
	kvValue = 2

	cmdType = 1
	cmdSend = 6

	sendProducerID = 1
	sendSequenceID = 2
)

// appendSend appends to dst the SEND frame of msg up to, not including, its
// payload, which follows it on the wire unchanged. size is what the broker
// holds against its maxMessageSize: metadata plus payload. With corrupt the
// checksum is wrong (for tests of the broker's SEND_ERROR).
func appendSend(dst []byte, producerID uint64, producerName string, seq, publishTime uint64, msg *pulsar.ProducerMessage, corrupt bool) (head []byte, size int) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // total size, command size

	dst = protowire.AppendTag(dst, cmdType, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(wirev1.BaseCommand_SEND))
	dst = protowire.AppendTag(dst, cmdSend, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(2+protowire.SizeVarint(producerID)+protowire.SizeVarint(seq)))
	dst = protowire.AppendTag(dst, sendProducerID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, producerID)
	dst = protowire.AppendTag(dst, sendSequenceID, protowire.VarintType)
	dst = protowire.AppendVarint(dst, seq)
	cmdSize := len(dst) - start - 8

	dst = binary.BigEndian.AppendUint16(dst, magicChecksum)
	crcAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // checksum, metadata size
	mdStart := len(dst)

	dst = appendString(dst, mdProducerName, producerName)
	dst = appendVarint(dst, mdSequenceID, seq)
	dst = appendVarint(dst, mdPublishTime, publishTime)
	for k, v := range msg.Properties {
		dst = protowire.AppendTag(dst, mdProperties, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(2+protowire.SizeBytes(len(k))+protowire.SizeBytes(len(v))))
		dst = appendString(dst, kvKey, k)
		dst = appendString(dst, kvValue, v)
	}
	if msg.Key != "" {
		dst = appendString(dst, mdPartitionKey, msg.Key)
	}
	dst = appendVarint(dst, mdUncompressedSize, uint64(uint32(len(msg.Payload))))
	if !msg.EventTime.IsZero() {
		dst = appendVarint(dst, mdEventTime, uint64(msg.EventTime.UnixNano())/1e6)
	}
	mdSize := len(dst) - mdStart

	binary.BigEndian.PutUint32(dst[crcAt+4:], uint32(mdSize))
	crc := crc32.Update(crc32.Checksum(dst[crcAt+4:], castagnoli), castagnoli, msg.Payload)
	if corrupt {
		crc ^= 1
	}
	binary.BigEndian.PutUint32(dst[crcAt:], crc)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4+len(msg.Payload)))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(cmdSize))
	return dst, mdSize + len(msg.Payload)
}

func appendString(dst []byte, field protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func appendVarint(dst []byte, field protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, field, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}
