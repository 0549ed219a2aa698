package pulsarwire

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

func TestReceiptFieldsMatchDescriptor(t *testing.T) {
	base := (&wirev1.BaseCommand{}).ProtoReflect().Descriptor()
	receipt := (&wirev1.CommandSendReceipt{}).ProtoReflect().Descriptor()
	id := (&wirev1.MessageIdData{}).ProtoReflect().Descriptor()
	for _, f := range []struct {
		desc protoreflect.MessageDescriptor
		name protoreflect.Name
		num  protowire.Number
	}{
		{base, "send_receipt", cmdSendReceipt},
		{receipt, "producer_id", receiptProducerID},
		{receipt, "sequence_id", receiptSequenceID},
		{receipt, "message_id", receiptMessageID},
		{receipt, "highest_sequence_id", receiptHighestSequenceID},
		{id, "ledgerId", idLedgerID},
		{id, "entryId", idEntryID},
		{id, "partition", idPartition},
	} {
		fd := f.desc.Fields().ByName(f.name)
		if fd == nil || fd.Number() != f.num {
			t.Errorf("%s.%s is not field %d", f.desc.FullName(), f.name, f.num)
		}
	}
}

// protoReceipt is r as the broker used to build it, for proto.Marshal.
func protoReceipt(r *SendReceipt) *wirev1.BaseCommand {
	id := &wirev1.MessageIdData{LedgerId: proto.Uint64(r.LedgerID), EntryId: proto.Uint64(r.EntryID)}
	if r.Partition >= 0 {
		id.Partition = proto.Int32(r.Partition)
	}
	receipt := &wirev1.CommandSendReceipt{
		ProducerId: proto.Uint64(r.ProducerID), SequenceId: proto.Uint64(r.SequenceID), MessageId: id,
	}
	if r.HasHighestSequenceID {
		receipt.HighestSequenceId = proto.Uint64(r.HighestSequenceID)
	}
	return &wirev1.BaseCommand{Type: wirev1.BaseCommand_SEND_RECEIPT.Enum(), SendReceipt: receipt}
}

// assertSameReceipt checks that AppendSendReceipt encodes r exactly as
// AppendFrame encodes its BaseCommand, after what dst already holds.
func assertSameReceipt(t *testing.T, dst []byte, r *SendReceipt) {
	t.Helper()
	want, err := AppendFrame(bytes.Clone(dst), protoReceipt(r), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendSendReceipt(bytes.Clone(dst), r); !bytes.Equal(got, want) {
		t.Fatalf("AppendSendReceipt(%+v) =\n%x, want\n%x", r, got, want)
	}
}

func TestAppendSendReceipt(t *testing.T) {
	tests := map[string]SendReceipt{
		"stored, not a partition": {ProducerID: 1, SequenceID: 7, LedgerID: 1, EntryID: 12345, Partition: -1},
		"stored in a partition":   {ProducerID: 1, SequenceID: 7, LedgerID: 1, EntryID: 0, Partition: 3},
		"a batch":                 {ProducerID: 2, SequenceID: 7, HighestSequenceID: 9, HasHighestSequenceID: true, LedgerID: 1, EntryID: 8, Partition: -1},
		"a duplicate":             {ProducerID: 1, SequenceID: 7, LedgerID: math.MaxUint64, EntryID: math.MaxUint64, Partition: -1},
		"largest values":          {ProducerID: math.MaxUint64, SequenceID: math.MaxUint64, HighestSequenceID: math.MaxUint64, HasHighestSequenceID: true, LedgerID: math.MaxUint64, EntryID: math.MaxUint64, Partition: math.MaxInt32},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			assertSameReceipt(t, nil, &r)
			assertSameReceipt(t, []byte("frames queued before"), &r)
		})
	}
}

func TestAppendSendReceiptDoesNotAllocate(t *testing.T) {
	r := SendReceipt{ProducerID: 1, SequenceID: 1 << 40, LedgerID: 1, EntryID: 1 << 20, Partition: 2}
	dst := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(100, func() { AppendSendReceipt(dst, &r) }); allocs != 0 {
		t.Fatalf("AppendSendReceipt allocates %v times", allocs)
	}
}

func FuzzAppendSendReceipt(f *testing.F) {
	f.Add(uint64(1), uint64(7), uint64(0), false, uint64(1), uint64(12345), int32(-1))
	f.Add(uint64(1), uint64(7), uint64(9), true, uint64(math.MaxUint64), uint64(math.MaxUint64), int32(3))
	f.Fuzz(func(t *testing.T, producer, seq, highest uint64, hasHighest bool, ledger, entry uint64, partition int32) {
		assertSameReceipt(t, nil, &SendReceipt{
			ProducerID: producer, SequenceID: seq, HighestSequenceID: highest, HasHighestSequenceID: hasHighest,
			LedgerID: ledger, EntryID: entry, Partition: partition,
		})
	})
}
