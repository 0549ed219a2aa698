package pulsarwire

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Field numbers of a SEND_RECEIPT as wire.proto declares them: BaseCommand's
// send_receipt, CommandSendReceipt's fields, MessageIdData's.
// TestReceiptFieldsMatchDescriptor holds them to the generated descriptor.
const (
	cmdSendReceipt protowire.Number = 7

	receiptProducerID        protowire.Number = 1
	receiptSequenceID        protowire.Number = 2
	receiptMessageID         protowire.Number = 3
	receiptHighestSequenceID protowire.Number = 4

	idLedgerID  protowire.Number = 1
	idEntryID   protowire.Number = 2
	idPartition protowire.Number = 3
)

// SendReceipt is a SEND_RECEIPT, the broker's answer to every message it
// stores, as plain values. AppendSendReceipt encodes it to the bytes that
// proto.Marshal gives the equivalent BaseCommand, without building one.
type SendReceipt struct {
	ProducerID uint64
	SequenceID uint64
	// HighestSequenceID is sent when HasHighestSequenceID is set.
	HighestSequenceID    uint64
	HasHighestSequenceID bool

	// LedgerID, EntryID and Partition are the message's id. Partition is
	// left out when negative: the field's default, -1, says that the
	// topic is not a partition.
	LedgerID  uint64
	EntryID   uint64
	Partition int32
}

// AppendSendReceipt appends the frame of r to dst. Each message of the
// command is built in a scratch array, inner first, since its length
// prefix comes before it.
func AppendSendReceipt(dst []byte, r *SendReceipt) []byte {
	var idBuf, receiptBuf, cmdBuf [96]byte
	id := r.appendMessageID(idBuf[:0])
	receipt := r.appendReceipt(receiptBuf[:0], id)
	cmd := appendVarintField(cmdBuf[:0], cmdType, uint64(wirev1.BaseCommand_SEND_RECEIPT))
	cmd = appendBytesField(cmd, cmdSendReceipt, receipt)
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(cmd)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(cmd)))
	return append(dst, cmd...)
}

// appendMessageID appends the MessageIdData of r.
func (r *SendReceipt) appendMessageID(dst []byte) []byte {
	dst = appendVarintField(dst, idLedgerID, r.LedgerID)
	dst = appendVarintField(dst, idEntryID, r.EntryID)
	if r.Partition >= 0 {
		dst = appendVarintField(dst, idPartition, uint64(r.Partition))
	}
	return dst
}

// appendReceipt appends the CommandSendReceipt of r, whose encoded
// message id is id.
func (r *SendReceipt) appendReceipt(dst, id []byte) []byte {
	dst = appendVarintField(dst, receiptProducerID, r.ProducerID)
	dst = appendVarintField(dst, receiptSequenceID, r.SequenceID)
	dst = appendBytesField(dst, receiptMessageID, id)
	if r.HasHighestSequenceID {
		dst = appendVarintField(dst, receiptHighestSequenceID, r.HighestSequenceID)
	}
	return dst
}

func appendVarintField(dst []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(dst, num, protowire.VarintType), v)
}

func appendBytesField(dst []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(dst, num, protowire.BytesType), v)
}
