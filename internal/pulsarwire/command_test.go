package pulsarwire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// The SEND fast path hard-codes field numbers and takes every field of
// CommandSend numbered up to sendMarker for a varint; this test holds
// both to the generated descriptor.
func TestSendFieldsMatchDescriptor(t *testing.T) {
	base := (&wirev1.BaseCommand{}).ProtoReflect().Descriptor()
	send := (&wirev1.CommandSend{}).ProtoReflect().Descriptor()
	for _, f := range []struct {
		desc protoreflect.MessageDescriptor
		name protoreflect.Name
		num  protowire.Number
	}{
		{base, "type", cmdType},
		{base, "send", cmdSend},
		{send, "producer_id", sendProducerID},
		{send, "sequence_id", sendSequenceID},
		{send, "num_messages", sendNumMessages},
		{send, "txnid_least_bits", sendTxnidLeastBits},
		{send, "txnid_most_bits", sendTxnidMostBits},
		{send, "highest_sequence_id", sendHighestSequenceID},
		{send, "is_chunk", sendIsChunk},
		{send, "marker", sendMarker},
	} {
		fd := f.desc.Fields().ByName(f.name)
		if fd == nil || fd.Number() != f.num {
			t.Errorf("%s.%s is not field %d", f.desc.FullName(), f.name, f.num)
		}
	}
	for i := range send.Fields().Len() {
		fd := send.Fields().Get(i)
		if fd.Number() <= sendMarker && lengthDelimited(fd.Kind()) {
			t.Errorf("%s is length-delimited, the fast path reads it as a varint", fd.FullName())
		}
	}
	assertRequired(t, send, sendProducerID, sendSequenceID)
}

// relaySend is the command of a SEND as the relay and pulsar-client-go
// encode it for an unbatched message.
func relaySend() []byte {
	b, _ := proto.Marshal(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_SEND.Enum(),
		Send: &wirev1.CommandSend{ProducerId: proto.Uint64(3), SequenceId: proto.Uint64(1 << 40)},
	})
	return b
}

// everySend has every field of CommandSend the fast path knows set.
func everySend() []byte {
	b, _ := proto.Marshal(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_SEND.Enum(),
		Send: &wirev1.CommandSend{
			ProducerId: proto.Uint64(3), SequenceId: proto.Uint64(9), NumMessages: proto.Int32(-2),
			TxnidLeastBits: proto.Uint64(4), TxnidMostBits: proto.Uint64(5), HighestSequenceId: proto.Uint64(12),
			IsChunk: proto.Bool(true), Marker: proto.Bool(false),
		},
	})
	return b
}

func TestDecodeSendTakesTheFastPath(t *testing.T) {
	for name, b := range map[string][]byte{"relay": relaySend(), "every field": everySend()} {
		t.Run(name, func(t *testing.T) {
			got := decodeSend(b)
			if got == nil {
				t.Fatal("decodeSend left a producer's SEND to proto.Unmarshal")
			}
			var want wirev1.BaseCommand
			if err := proto.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, &want) {
				t.Fatalf("decodeSend = %v, want %v", got, &want)
			}
		})
	}
}

func TestDecodeSendLeavesOtherCommands(t *testing.T) {
	withMessageID, _ := proto.Marshal(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_SEND.Enum(),
		Send: &wirev1.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(1),
			MessageId: &wirev1.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(2)}},
	})
	noSequence, _ := proto.MarshalOptions{AllowPartial: true}.Marshal(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_SEND.Enum(), Send: &wirev1.CommandSend{ProducerId: proto.Uint64(1)},
	})
	ping, _ := proto.Marshal(pingCommand())
	for name, b := range map[string][]byte{
		"message id":        withMessageID,
		"no sequence id":    noSequence,
		"ping":              ping,
		"a field after":     protowire.AppendVarint(protowire.AppendTag(relaySend(), 99, protowire.VarintType), 1),
		"truncated":         relaySend()[:len(relaySend())-1],
		"send without type": relaySend()[2:],
	} {
		if decodeSend(b) != nil {
			t.Errorf("%s: decodeSend took it", name)
		}
	}
}

func TestParseFrameOfSendAllocations(t *testing.T) {
	msg, err := NewMessage(relayMetadata(), []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	frame, err := AppendFrame(nil, sendCommand(), msg)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseFrame(frame[4:]); err != nil {
			t.Fatal(err)
		}
	})
	// The command, the message and the frame.
	if allocs != 3 {
		t.Fatalf("ParseFrame of a SEND allocates %v times, want 3", allocs)
	}
}

// FuzzDecodeSend holds the SEND fast path to proto.Unmarshal: whatever
// bytes it takes, proto.Unmarshal accepts and decodes to an equal command.
func FuzzDecodeSend(f *testing.F) {
	f.Add(relaySend())
	f.Add(everySend())
	ping, _ := proto.Marshal(pingCommand())
	f.Add(ping)
	f.Add(append(relaySend(), relaySend()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := decodeSend(b)
		if got == nil {
			return
		}
		var want wirev1.BaseCommand
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatalf("decodeSend took a command proto.Unmarshal refuses: %v", err)
		}
		if !proto.Equal(got, &want) {
			t.Fatalf("decodeSend = %v, proto.Unmarshal gives %v", got, &want)
		}
	})
}
