package pulsarwire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// BaseCommand and CommandSend field numbers as wire.proto declares them,
// for the SEND fast path. TestSendFieldsMatchDescriptor holds them to the
// generated descriptor.
const (
	cmdType protowire.Number = 1
	cmdSend protowire.Number = 6

	// CommandSend's varint fields are 1 to 8: producer_id, sequence_id,
	// num_messages, txnid_least_bits, txnid_most_bits,
	// highest_sequence_id, is_chunk and marker.
	sendProducerID        protowire.Number = 1
	sendSequenceID        protowire.Number = 2
	sendNumMessages       protowire.Number = 3
	sendTxnidLeastBits    protowire.Number = 4
	sendTxnidMostBits     protowire.Number = 5
	sendHighestSequenceID protowire.Number = 6
	sendIsChunk           protowire.Number = 7
	sendMarker            protowire.Number = 8
)

// decodeCommand decodes a frame's BaseCommand. A SEND, one per message a
// producer publishes, is decoded by hand when it has the form producers
// give it; everything else goes through proto.Unmarshal.
func decodeCommand(b []byte) (*wirev1.BaseCommand, error) {
	if cmd := decodeSend(b); cmd != nil {
		return cmd, nil
	}
	cmd := new(wirev1.BaseCommand)
	if err := proto.Unmarshal(b, cmd); err != nil {
		return nil, fmt.Errorf("%w: decoding command: %w", ErrMalformedFrame, err)
	}
	return cmd, nil
}

// decodeSend decodes b when it is a SEND in the form producers send it:
// the type, then the send field, holding nothing but CommandSend's varint
// fields, its two required ones among them. It returns nil for anything
// else, leaving it to proto.Unmarshal. Keeping the fast path this narrow
// keeps it simple, and equal to proto.Unmarshal wherever it applies, as
// FuzzDecodeSend checks.
func decodeSend(b []byte) *wirev1.BaseCommand {
	b, ok := consumeTagOf(b, cmdType, protowire.VarintType)
	if !ok {
		return nil
	}
	typ, n := protowire.ConsumeVarint(b)
	if n < 0 || typ != uint64(wirev1.BaseCommand_SEND) {
		return nil
	}
	if b, ok = consumeTagOf(b[n:], cmdSend, protowire.BytesType); !ok {
		return nil
	}
	body, n := protowire.ConsumeBytes(b)
	if n != len(b) { // malformed, or more fields follow
		return nil
	}
	var f sendFields
	if !f.decode(body) {
		return nil
	}
	return f.command()
}

// consumeTagOf consumes the tag at the start of b when it is that of field
// num with wire type typ.
func consumeTagOf(b []byte, num protowire.Number, typ protowire.Type) ([]byte, bool) {
	gotNum, gotTyp, n := protowire.ConsumeTag(b)
	if n < 0 || gotNum != num || gotTyp != typ {
		return nil, false
	}
	return b[n:], true
}

// sendFields holds the varint fields of a CommandSend as they come off the
// wire, indexed by field number, and which of them were present.
type sendFields struct {
	values [sendMarker + 1]uint64
	set    uint16 // bit n: field n was present
}

// decode reads a CommandSend made only of varint fields, the last
// occurrence of a field winning, and reports whether it was one, with
// producer_id and sequence_id.
func (f *sendFields) decode(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType || num > sendMarker {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return false
		}
		f.values[num] = v
		f.set |= 1 << num
		b = b[n:]
	}
	return f.has(sendProducerID) && f.has(sendSequenceID)
}

func (f *sendFields) has(num protowire.Number) bool { return f.set&(1<<num) != 0 }

// decodedSend is a decoded SEND together with the values its fields point
// to, so that one allocation holds all of it.
type decodedSend struct {
	base        wirev1.BaseCommand
	send        wirev1.CommandSend
	typ         wirev1.BaseCommand_Type
	values      [sendMarker + 1]uint64
	numMessages int32
	isChunk     bool
	marker      bool
}

// command builds the BaseCommand that proto.Unmarshal would: the present
// fields set, converted as it converts them, the others nil.
func (f *sendFields) command() *wirev1.BaseCommand {
	c := &decodedSend{typ: wirev1.BaseCommand_SEND, values: f.values}
	c.base.Type, c.base.Send = &c.typ, &c.send
	s := &c.send
	s.ProducerId, s.SequenceId = &c.values[sendProducerID], &c.values[sendSequenceID]
	if f.has(sendNumMessages) {
		c.numMessages = int32(f.values[sendNumMessages])
		s.NumMessages = &c.numMessages
	}
	if f.has(sendTxnidLeastBits) {
		s.TxnidLeastBits = &c.values[sendTxnidLeastBits]
	}
	if f.has(sendTxnidMostBits) {
		s.TxnidMostBits = &c.values[sendTxnidMostBits]
	}
	if f.has(sendHighestSequenceID) {
		s.HighestSequenceId = &c.values[sendHighestSequenceID]
	}
	if f.has(sendIsChunk) {
		c.isChunk = protowire.DecodeBool(f.values[sendIsChunk])
		s.IsChunk = &c.isChunk
	}
	if f.has(sendMarker) {
		c.marker = protowire.DecodeBool(f.values[sendMarker])
		s.Marker = &c.marker
	}
	return &c.base
}
