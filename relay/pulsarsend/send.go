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
	mdProducerName       = 1
	mdSequenceID         = 2
	mdPublishTime        = 3
	mdProperties         = 4
	mdPartitionKey       = 6
	mdUncompressedSize   = 9
	mdNumMessagesInBatch = 11
	mdEventTime          = 12
	mdOrderingKey        = 18
	mdHighestSequenceID  = 24

	kvKey   = 1
	kvValue = 2

	smdProperties   = 1
	smdPartitionKey = 2
	smdPayloadSize  = 3
	smdEventTime    = 5
	smdOrderingKey  = 7
	smdSequenceID   = 8

	cmdType = 1
	cmdSend = 6

	sendProducerID        = 1
	sendSequenceID        = 2
	sendNumMessages       = 3
	sendHighestSequenceID = 6
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
	cmdEnd := len(dst)

	dst = appendMetadataHead(dst, producerName, seq, publishTime)
	dst = appendMessageFields(dst, aloneFields, msg)
	mdSize := finishFrame(dst, start, cmdEnd, len(dst), msg.Payload, corrupt)
	return dst, mdSize + len(msg.Payload)
}

// appendMetadataHead appends, after a SEND command, the checksum's magic,
// room for the checksum and the metadata's size, and the metadata's first
// fields: producer name, sequence id, publish time.
func appendMetadataHead(dst []byte, producerName string, seq, publishTime uint64) []byte {
	dst = binary.BigEndian.AppendUint16(dst, magicChecksum)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // checksum, metadata size
	dst = appendString(dst, mdProducerName, producerName)
	dst = appendVarint(dst, mdSequenceID, seq)
	return appendVarint(dst, mdPublishTime, publishTime)
}

// finishFrame fills in the sizes and the checksum of the frame that begins
// at start in dst: its command ends at cmdEnd (where appendMetadataHead
// began), its metadata at mdEnd, and tail (a payload written after dst, or
// nil when dst holds the whole frame) ends it. It returns the metadata's
// size.
func finishFrame(dst []byte, start, cmdEnd, mdEnd int, tail []byte, corrupt bool) (mdSize int) {
	crcAt := cmdEnd + 2 // after the magic
	mdSize = mdEnd - (crcAt + 8)
	binary.BigEndian.PutUint32(dst[crcAt+4:], uint32(mdSize))
	crc := crc32.Update(crc32.Checksum(dst[crcAt+4:], castagnoli), castagnoli, tail)
	if corrupt {
		crc ^= 1
	}
	binary.BigEndian.PutUint32(dst[crcAt:], crc)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4+len(tail)))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(cmdEnd-start-8))
	return mdSize
}

// appendProperties appends props as repeated KeyValue messages in field.
func appendProperties(dst []byte, field protowire.Number, props map[string]string) []byte {
	for k, v := range props {
		dst = protowire.AppendTag(dst, field, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(2+protowire.SizeBytes(len(k))+protowire.SizeBytes(len(v))))
		dst = appendString(dst, kvKey, k)
		dst = appendString(dst, kvValue, v)
	}
	return dst
}

func appendString(dst []byte, field protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func appendVarint(dst []byte, field protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, field, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

// appendBatchSend appends to dst the whole SEND frame of a batch: one entry
// holding msgs, whose sequence ids grow strictly. The command and the
// metadata carry the lowest id as the batch's sequence id and the highest
// as its highest_sequence_id, which is what Pulsar's deduplication judges
// and remembers (see Producer.SendBatch). The batch's routing key is the
// messages' shared ordering key, or their shared key when they have none,
// so that a Key_Shared subscription places the entry where it would place
// each message. Each message is a SingleMessageMetadata and its payload,
// as pulsar-client-go lays out a batch; they are laid out first in body (a
// scratch buffer, returned for reuse), since the metadata ahead of them
// carries their total size. size is what the broker holds against its
// maxMessageSize.
func appendBatchSend(dst, body []byte, producerID uint64, producerName string, publishTime uint64, msgs []BatchMessage) (frame, bodyOut []byte, size int) {
	first := msgs[0].Msg
	lo, hi, n := uint64(*first.SequenceID), uint64(*msgs[len(msgs)-1].Msg.SequenceID), uint64(len(msgs))
	body = body[:0]
	for _, m := range msgs {
		at := len(body)
		body = append(body, 0, 0, 0, 0) // the metadata's size, once it is written
		body = appendSingleMetadata(body, m.Msg, uint64(*m.Msg.SequenceID))
		binary.BigEndian.PutUint32(body[at:], uint32(len(body)-at-4))
		body = append(body, m.Msg.Payload...)
	}

	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // total size, command size

	sendSize := 4 + protowire.SizeVarint(producerID) + protowire.SizeVarint(lo) + protowire.SizeVarint(n) + protowire.SizeVarint(hi)
	dst = protowire.AppendTag(dst, cmdType, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(wirev1.BaseCommand_SEND))
	dst = protowire.AppendTag(dst, cmdSend, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(sendSize))
	dst = appendVarint(dst, sendProducerID, producerID)
	dst = appendVarint(dst, sendSequenceID, lo)
	dst = appendVarint(dst, sendNumMessages, n)
	dst = appendVarint(dst, sendHighestSequenceID, hi)
	cmdEnd := len(dst)

	dst = appendMetadataHead(dst, producerName, lo, publishTime)
	if first.OrderingKey == "" && first.Key != "" {
		dst = appendString(dst, mdPartitionKey, first.Key)
	}
	dst = appendVarint(dst, mdUncompressedSize, uint64(uint32(len(body))))
	dst = appendVarint(dst, mdNumMessagesInBatch, n)
	if first.OrderingKey != "" {
		dst = appendString(dst, mdOrderingKey, first.OrderingKey)
	}
	dst = appendVarint(dst, mdHighestSequenceID, hi)
	mdEnd := len(dst)
	dst = append(dst, body...)
	mdSize := finishFrame(dst, start, cmdEnd, mdEnd, nil, false)
	return dst, body, mdSize + len(body)
}

// appendSingleMetadata appends msg's SingleMessageMetadata within a batch:
// what pulsar-client-go v0.19 writes for it (genSingleMessageMetadataInBatch).
func appendSingleMetadata(dst []byte, msg *pulsar.ProducerMessage, seq uint64) []byte {
	return appendVarint(appendMessageFields(dst, inBatchFields, msg), smdSequenceID, seq)
}

// messageFields number a message's own fields: in MessageMetadata for a
// message sent alone, in its SingleMessageMetadata within a batch. The
// fields come in the same order in both, ascending.
type messageFields struct {
	properties, key, size, eventTime, orderingKey protowire.Number
}

var (
	aloneFields   = messageFields{mdProperties, mdPartitionKey, mdUncompressedSize, mdEventTime, mdOrderingKey}
	inBatchFields = messageFields{smdProperties, smdPartitionKey, smdPayloadSize, smdEventTime, smdOrderingKey}
)

// appendMessageFields appends msg's properties, key (when set), payload
// size, event time and ordering key (when set) under f's numbers.
func appendMessageFields(dst []byte, f messageFields, msg *pulsar.ProducerMessage) []byte {
	dst = appendProperties(dst, f.properties, msg.Properties)
	if msg.Key != "" {
		dst = appendString(dst, f.key, msg.Key)
	}
	dst = appendVarint(dst, f.size, uint64(uint32(len(msg.Payload))))
	if !msg.EventTime.IsZero() {
		dst = appendVarint(dst, f.eventTime, uint64(msg.EventTime.UnixNano())/1e6)
	}
	if msg.OrderingKey != "" {
		dst = appendString(dst, f.orderingKey, msg.OrderingKey)
	}
	return dst
}
