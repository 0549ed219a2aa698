package pulsarwire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// MetadataSummary holds the fields of a message's MessageMetadata that the
// broker acts on: who produced the message and when, how it is batched or
// chunked, its keys and its delivery time. Decoding only these, in one pass
// and without building a MessageMetadata, spares the broker the allocation
// of every property of every message it stores.
//
// The byte slices alias the message's bytes, which the broker keeps
// unchanged; they must not be modified.
type MetadataSummary struct {
	ProducerName []byte
	SequenceID   uint64
	PublishTime  uint64

	// NumMessagesInBatch is 1, the field's declared default, when
	// HasNumMessagesInBatch is false.
	NumMessagesInBatch    int32
	HasNumMessagesInBatch bool

	PartitionKey           []byte
	HasPartitionKey        bool
	PartitionKeyB64Encoded bool
	OrderingKey            []byte
	HasOrderingKey         bool

	NumChunksFromMsg int32
	ChunkID          int32
	DeliverAtTime    int64
}

// MessageMetadata field numbers as wire.proto declares them, for the
// fields the summary reads and for properties, which it checks.
// TestSummaryFieldsMatchDescriptor holds them to the generated descriptor.
const (
	mdProducerName           protowire.Number = 1
	mdSequenceID             protowire.Number = 2
	mdPublishTime            protowire.Number = 3
	mdProperties             protowire.Number = 4
	mdPartitionKey           protowire.Number = 6
	mdNumMessagesInBatch     protowire.Number = 11
	mdPartitionKeyB64Encoded protowire.Number = 17
	mdOrderingKey            protowire.Number = 18
	mdDeliverAtTime          protowire.Number = 19
	mdNumChunksFromMsg       protowire.Number = 27
	mdChunkID                protowire.Number = 29

	kvKey   protowire.Number = 1
	kvValue protowire.Number = 2
)

// DecodeSummary decodes the fields of the message's metadata that
// MetadataSummary holds. It refuses exactly the metadata that
// DecodeMetadata refuses, with an error wrapping ErrMalformedFrame: bytes
// that are not protobuf, a required field missing (producer_name,
// sequence_id, publish_time, or a property's key or value). As with
// DecodeMetadata, the last occurrence of a field wins, and a field whose
// wire type is not its declared one is skipped as an unknown field.
func (m *Message) DecodeSummary() (MetadataSummary, error) {
	s, err := decodeSummary(m.Metadata())
	if err != nil {
		return MetadataSummary{}, fmt.Errorf("%w: decoding message metadata: %w", ErrMalformedFrame, err)
	}
	return s, nil
}

// Reasons for refusing metadata, wrapped by DecodeSummary.
var (
	errInvalidWireFormat = errors.New("invalid wire-format data")
	errRequiredNotSet    = errors.New("required field producer_name, sequence_id or publish_time not set")
	errInvalidProperty   = errors.New("invalid property: malformed, or without its required key or value")
)

// requiredFields is the set of MessageMetadata's required fields, one bit
// per field number.
const requiredFields = 1<<mdProducerName | 1<<mdSequenceID | 1<<mdPublishTime

func decodeSummary(b []byte) (MetadataSummary, error) {
	s := MetadataSummary{NumMessagesInBatch: 1}
	var found uint64 // required fields seen, as in requiredFields
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return s, errInvalidWireFormat
		}
		b = b[n:]
		n, err := s.consumeField(num, typ, b)
		if err != nil {
			return s, err
		}
		found |= requiredBit(num, typ)
		b = b[n:]
	}
	if found != requiredFields {
		return s, errRequiredNotSet
	}
	return s, nil
}

// consumeTag is protowire.ConsumeTag with the two further limits that
// proto.Unmarshal puts on the tags of a message's fields: a field number
// no greater than protowire.MaxValidNumber, and no end of a group that
// never started.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && (num > protowire.MaxValidNumber || typ == protowire.EndGroupType) {
		return 0, 0, -1
	}
	return num, typ, n
}

// consumeField consumes the value of field num, of wire type typ, at the
// start of b, keeping it in s when it is a field that s holds, and returns
// the value's length. A value is read by its wire type: setVarint knows
// only fields declared as varints, setBytes only length-delimited ones, so
// a field sent with another wire type than its declared one is skipped,
// as proto.Unmarshal keeps it as an unknown field.
func (s *MetadataSummary) consumeField(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	switch typ {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, errInvalidWireFormat
		}
		s.setVarint(num, v)
		return n, nil
	case protowire.BytesType:
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errInvalidWireFormat
		}
		if num == mdProperties && !validKeyValue(v) {
			return 0, errInvalidProperty
		}
		s.setBytes(num, v)
		return n, nil
	}
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return 0, errInvalidWireFormat
	}
	return n, nil
}

// setVarint keeps v when num is a varint field that s holds, converting
// it as proto.Unmarshal does: int32 and int64 fields by truncation, bools
// by comparison with zero.
func (s *MetadataSummary) setVarint(num protowire.Number, v uint64) {
	switch num {
	case mdSequenceID:
		s.SequenceID = v
	case mdPublishTime:
		s.PublishTime = v
	case mdNumMessagesInBatch:
		s.NumMessagesInBatch, s.HasNumMessagesInBatch = int32(v), true
	case mdPartitionKeyB64Encoded:
		s.PartitionKeyB64Encoded = protowire.DecodeBool(v)
	case mdDeliverAtTime:
		s.DeliverAtTime = int64(v)
	case mdNumChunksFromMsg:
		s.NumChunksFromMsg = int32(v)
	case mdChunkID:
		s.ChunkID = int32(v)
	}
}

// setBytes keeps v when num is a string or bytes field that s holds.
func (s *MetadataSummary) setBytes(num protowire.Number, v []byte) {
	switch num {
	case mdProducerName:
		s.ProducerName = v
	case mdPartitionKey:
		s.PartitionKey, s.HasPartitionKey = v, true
	case mdOrderingKey:
		s.OrderingKey, s.HasOrderingKey = v, true
	}
}

// requiredBit returns the bit of requiredFields that a field sets: a
// required field counts only with its declared wire type, since
// proto.Unmarshal takes it as an unknown field otherwise.
func requiredBit(num protowire.Number, typ protowire.Type) uint64 {
	switch {
	case num == mdProducerName && typ == protowire.BytesType,
		num == mdSequenceID && typ == protowire.VarintType,
		num == mdPublishTime && typ == protowire.VarintType:
		return 1 << num
	}
	return 0
}

// validKeyValue reports whether b is a property, a KeyValue, that
// proto.Unmarshal accepts: well-formed, with its required key and value.
// The summary does not keep properties, but a message whose properties a
// consumer could not decode must be refused as DecodeMetadata refuses it.
func validKeyValue(b []byte) bool {
	var found uint64
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return false
		}
		if (num == kvKey || num == kvValue) && typ == protowire.BytesType {
			found |= 1 << num
		}
		b = b[n:]
	}
	return found == 1<<kvKey|1<<kvValue
}
