package pulsarwire

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// The summary's decoder hard-codes field numbers and wire types, and
// validates nothing but properties in depth; this test holds those
// assumptions to the generated descriptor, so that a change to wire.proto
// that breaks them fails here rather than in production.
func TestSummaryFieldsMatchDescriptor(t *testing.T) {
	md := (&wirev1.MessageMetadata{}).ProtoReflect().Descriptor()
	kv := (&wirev1.KeyValue{}).ProtoReflect().Descriptor()
	fields := []struct {
		desc  protoreflect.MessageDescriptor
		name  protoreflect.Name
		num   protowire.Number
		bytes bool // length-delimited, else a varint
	}{
		{md, "producer_name", mdProducerName, true},
		{md, "sequence_id", mdSequenceID, false},
		{md, "publish_time", mdPublishTime, false},
		{md, "properties", mdProperties, true},
		{md, "partition_key", mdPartitionKey, true},
		{md, "num_messages_in_batch", mdNumMessagesInBatch, false},
		{md, "partition_key_b64_encoded", mdPartitionKeyB64Encoded, false},
		{md, "ordering_key", mdOrderingKey, true},
		{md, "deliver_at_time", mdDeliverAtTime, false},
		{md, "num_chunks_from_msg", mdNumChunksFromMsg, false},
		{md, "chunk_id", mdChunkID, false},
		{kv, "key", kvKey, true},
		{kv, "value", kvValue, true},
	}
	for _, f := range fields {
		fd := f.desc.Fields().ByName(f.name)
		if fd == nil {
			t.Errorf("%s has no field %s", f.desc.FullName(), f.name)
			continue
		}
		if fd.Number() != f.num {
			t.Errorf("%s is field %d, the decoder reads %d", fd.FullName(), fd.Number(), f.num)
		}
		if got := lengthDelimited(fd.Kind()); got != f.bytes {
			t.Errorf("%s is a %v: length-delimited %v, the decoder assumes %v", fd.FullName(), fd.Kind(), got, f.bytes)
		}
	}
	if n := md.Fields().ByName("num_messages_in_batch").Default().Int(); n != 1 {
		t.Errorf("num_messages_in_batch defaults to %d, the decoder assumes 1", n)
	}
	assertRequired(t, md, mdProducerName, mdSequenceID, mdPublishTime)
	assertRequired(t, kv, kvKey, kvValue)
	assertMessageFields(t, md, mdProperties)
	assertMessageFields(t, kv)
}

func lengthDelimited(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return true
	}
	return false
}

// assertRequired checks that want are exactly desc's required fields.
func assertRequired(t *testing.T, desc protoreflect.MessageDescriptor, want ...protowire.Number) {
	t.Helper()
	nums := desc.RequiredNumbers()
	if nums.Len() != len(want) {
		t.Errorf("%s has %d required fields, the decoder checks %d", desc.FullName(), nums.Len(), len(want))
	}
	for _, n := range want {
		if !nums.Has(n) {
			t.Errorf("%s: field %d is not required, the decoder requires it", desc.FullName(), n)
		}
	}
}

// assertMessageFields checks that want are exactly desc's message-typed
// fields, the ones whose content proto.Unmarshal validates.
func assertMessageFields(t *testing.T, desc protoreflect.MessageDescriptor, want ...protowire.Number) {
	t.Helper()
	var got []protowire.Number
	for i := range desc.Fields().Len() {
		if fd := desc.Fields().Get(i); fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			got = append(got, fd.Number())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s has message fields %v, the decoder validates %v", desc.FullName(), got, want)
	}
}

// fullMetadata is metadata with every field the summary holds set, and
// properties, as a producer of chunked, keyed, delayed batches sends it.
func fullMetadata() *wirev1.MessageMetadata {
	return &wirev1.MessageMetadata{
		ProducerName: proto.String("relay-1"),
		SequenceId:   proto.Uint64(42),
		PublishTime:  proto.Uint64(1700000000123),
		Properties: []*wirev1.KeyValue{
			{Key: proto.String("lsn"), Value: proto.String("0/16B3748")},
			{Key: proto.String("event-type"), Value: proto.String("OrderPlaced")},
		},
		PartitionKey:           proto.String("b3JkZXItMQ=="),
		PartitionKeyB64Encoded: proto.Bool(true),
		OrderingKey:            []byte("ord"),
		NumMessagesInBatch:     proto.Int32(3),
		DeliverAtTime:          proto.Int64(-5),
		NumChunksFromMsg:       proto.Int32(4),
		ChunkId:                proto.Int32(2),
		UncompressedSize:       proto.Uint32(99),
		EventTime:              proto.Uint64(1700000000000),
		Uuid:                   proto.String("u-1"),
	}
}

// relayMetadata is what the relay sends: one unbatched message with the
// event's properties and key.
func relayMetadata() *wirev1.MessageMetadata {
	return &wirev1.MessageMetadata{
		ProducerName: proto.String("alpes-0"),
		SequenceId:   proto.Uint64(1234567),
		PublishTime:  proto.Uint64(1700000000000),
		Properties: []*wirev1.KeyValue{
			{Key: proto.String("alpes-lsn"), Value: proto.String("0/16B3748")},
			{Key: proto.String("alpes-table"), Value: proto.String("orders.outbox")},
			{Key: proto.String("content-type"), Value: proto.String("application/x-protobuf")},
		},
		PartitionKey:     proto.String("order-1"),
		UncompressedSize: proto.Uint32(80),
	}
}

func marshal(t testing.TB, md *wirev1.MessageMetadata) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSummary(t *testing.T) {
	full := marshal(t, fullMetadata())
	minimal := marshal(t, &wirev1.MessageMetadata{
		ProducerName: proto.String(""), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(0),
	})
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	tests := []struct {
		name string
		b    []byte
		want MetadataSummary // ignored when refused
		ok   bool
	}{
		{"every field", full, MetadataSummary{
			ProducerName: []byte("relay-1"), SequenceID: 42, PublishTime: 1700000000123,
			NumMessagesInBatch: 3, HasNumMessagesInBatch: true,
			PartitionKey: []byte("b3JkZXItMQ=="), HasPartitionKey: true, PartitionKeyB64Encoded: true,
			OrderingKey: []byte("ord"), HasOrderingKey: true,
			NumChunksFromMsg: 4, ChunkID: 2, DeliverAtTime: -5,
		}, true},
		{"only the required fields, empty", minimal, MetadataSummary{ProducerName: []byte{}, NumMessagesInBatch: 1}, true},
		{"last occurrence wins", protowire.AppendVarint(tag(full, mdSequenceID, protowire.VarintType), 7), MetadataSummary{
			ProducerName: []byte("relay-1"), SequenceID: 7, PublishTime: 1700000000123,
			NumMessagesInBatch: 3, HasNumMessagesInBatch: true,
			PartitionKey: []byte("b3JkZXItMQ=="), HasPartitionKey: true, PartitionKeyB64Encoded: true,
			OrderingKey: []byte("ord"), HasOrderingKey: true,
			NumChunksFromMsg: 4, ChunkID: 2, DeliverAtTime: -5,
		}, true},
		{"a key of the wrong wire type is unknown", protowire.AppendVarint(tag(minimal, mdPartitionKey, protowire.VarintType), 1),
			MetadataSummary{ProducerName: []byte{}, NumMessagesInBatch: 1}, true},
		{"a required field of the wrong wire type is missing", append(marshal(t, &wirev1.MessageMetadata{
			ProducerName: proto.String("p"), PublishTime: proto.Uint64(1),
		}), protowire.AppendBytes(tag(nil, mdSequenceID, protowire.BytesType), []byte{1})...), MetadataSummary{}, false},
		{"no producer name", marshal(t, &wirev1.MessageMetadata{SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1)}), MetadataSummary{}, false},
		{"a property without value", marshal(t, &wirev1.MessageMetadata{
			ProducerName: proto.String("p"), SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1),
			Properties: []*wirev1.KeyValue{{Key: proto.String("k")}},
		}), MetadataSummary{}, false},
		{"a malformed property", protowire.AppendBytes(tag(minimal, mdProperties, protowire.BytesType), []byte{0x0a, 5}), MetadataSummary{}, false},
		{"truncated", full[:len(full)-1], MetadataSummary{}, false},
		{"end of a group never started", tag(minimal, 9, protowire.EndGroupType), MetadataSummary{}, false},
		{"field number beyond the maximum", tag(minimal, protowire.MaxValidNumber+1, protowire.VarintType), MetadataSummary{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := messageWithMetadata(tt.b)
			got, err := msg.DecodeSummary()
			if _, wantErr := msg.DecodeMetadata(); (wantErr == nil) != tt.ok {
				t.Fatalf("DecodeMetadata = %v: the case expects the wrong decision", wantErr)
			}
			if !tt.ok {
				if !errors.Is(err, ErrMalformedFrame) {
					t.Fatalf("DecodeSummary = %v, want ErrMalformedFrame", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if view(got) != view(tt.want) {
				t.Fatalf("DecodeSummary = %+v,\nwant %+v", view(got), view(tt.want))
			}
		})
	}
}

// messageWithMetadata returns a message whose metadata is md, whatever
// its bytes, and an empty payload.
func messageWithMetadata(md []byte) *Message {
	raw := binary.BigEndian.AppendUint32(nil, uint32(len(md)))
	return &Message{Raw: append(raw, md...)}
}

func TestDecodeSummaryDoesNotAllocate(t *testing.T) {
	msg, err := NewMessage(relayMetadata(), []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := msg.DecodeSummary(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("DecodeSummary allocates %v times per message, want 0", allocs)
	}
}

// summaryView is a summary with its byte slices as strings, comparable
// with ==, and blind to the difference between nil and empty, which only
// the Has fields carry.
type summaryView struct {
	ProducerName, PartitionKey, OrderingKey           string
	SequenceID, PublishTime                           uint64
	NumMessagesInBatch, NumChunksFromMsg, ChunkID     int32
	HasNumMessagesInBatch, HasPartitionKey, HasOrdKey bool
	PartitionKeyB64Encoded                            bool
	DeliverAtTime                                     int64
}

func view(s MetadataSummary) summaryView {
	return summaryView{
		ProducerName: string(s.ProducerName), PartitionKey: string(s.PartitionKey), OrderingKey: string(s.OrderingKey),
		SequenceID: s.SequenceID, PublishTime: s.PublishTime,
		NumMessagesInBatch: s.NumMessagesInBatch, NumChunksFromMsg: s.NumChunksFromMsg, ChunkID: s.ChunkID,
		HasNumMessagesInBatch: s.HasNumMessagesInBatch, HasPartitionKey: s.HasPartitionKey, HasOrdKey: s.HasOrderingKey,
		PartitionKeyB64Encoded: s.PartitionKeyB64Encoded, DeliverAtTime: s.DeliverAtTime,
	}
}

// viewOf is what the summary of md must be: the fields as the generated
// getters give them, and presence as the generated struct records it.
func viewOf(md *wirev1.MessageMetadata) summaryView {
	return summaryView{
		ProducerName: md.GetProducerName(), PartitionKey: md.GetPartitionKey(), OrderingKey: string(md.GetOrderingKey()),
		SequenceID: md.GetSequenceId(), PublishTime: md.GetPublishTime(),
		NumMessagesInBatch: md.GetNumMessagesInBatch(), NumChunksFromMsg: md.GetNumChunksFromMsg(), ChunkID: md.GetChunkId(),
		HasNumMessagesInBatch: md.NumMessagesInBatch != nil, HasPartitionKey: md.PartitionKey != nil, HasOrdKey: md.OrderingKey != nil,
		PartitionKeyB64Encoded: md.GetPartitionKeyB64Encoded(), DeliverAtTime: md.GetDeliverAtTime(),
	}
}

// FuzzDecodeSummary holds the summary's decoder to proto.Unmarshal, which
// DecodeMetadata uses: on any bytes, both accept or both refuse, and what
// is accepted decodes to the same values. Metadata refused only for a
// missing required field is compared too, with proto.Unmarshal allowed to
// leave it out, so that the values are checked on more of what the fuzzer
// tries.
func FuzzDecodeSummary(f *testing.F) {
	for _, md := range []*wirev1.MessageMetadata{fullMetadata(), relayMetadata(), {}} {
		f.Add(marshal(f, md))
	}
	relay := marshal(f, relayMetadata())
	f.Add(protowire.AppendVarint(protowire.AppendTag(relay, mdPartitionKey, protowire.VarintType), 3))
	f.Add(protowire.AppendTag(protowire.AppendTag(relay, 5, protowire.StartGroupType), 5, protowire.EndGroupType))
	f.Add(protowire.AppendBytes(protowire.AppendTag(relay, mdProperties, protowire.BytesType), []byte{0x0a, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeSummary(b)
		var md wirev1.MessageMetadata
		wantErr := proto.Unmarshal(b, &md)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeSummary error %v, proto.Unmarshal error %v", err, wantErr)
		}
		if err == nil && view(got) != viewOf(&md) {
			t.Fatalf("decodeSummary = %+v,\nproto.Unmarshal gives %+v", view(got), viewOf(&md))
		}
		var partial wirev1.MessageMetadata
		partialErr := proto.UnmarshalOptions{AllowPartial: true}.Unmarshal(b, &partial)
		onlyRequiredMissing := partialErr == nil && propertiesComplete(&partial) &&
			(partial.ProducerName == nil || partial.SequenceId == nil || partial.PublishTime == nil)
		if errors.Is(err, errRequiredNotSet) != onlyRequiredMissing {
			t.Fatalf("decodeSummary error %v, proto.Unmarshal error %v, %v allowing partial", err, wantErr, partialErr)
		}
		if errors.Is(err, errRequiredNotSet) && view(got) != viewOf(&partial) {
			t.Fatalf("decodeSummary = %+v,\nproto.Unmarshal gives %+v", view(got), viewOf(&partial))
		}
	})
}

// propertiesComplete reports whether every property of md has its
// required key and value.
func propertiesComplete(md *wirev1.MessageMetadata) bool {
	for _, kv := range md.Properties {
		if kv.Key == nil || kv.Value == nil {
			return false
		}
	}
	return true
}
