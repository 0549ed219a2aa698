package pulsarsend

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// TestSendFrameIsWhatTheGoClientSends decodes a hand-encoded SEND frame with
// the general decoder, and compares its command and metadata with what
// pulsar-client-go v0.19 builds for the same unbatched message
// (partitionProducer.genMetadata and updateMetadataSeqID, then SingleSend).
func TestSendFrameIsWhatTheGoClientSends(t *testing.T) {
	seq := int64(0x16B3748 << 20)
	eventTime := time.Date(2026, 11, 26, 10, 0, 0, 123_456_789, time.UTC)
	tests := []struct {
		name string
		msg  *pulsar.ProducerMessage
		want *wirev1.MessageMetadata
	}{
		{
			name: "key, properties, event time",
			msg: &pulsar.ProducerMessage{
				Payload: []byte("payload"), Key: "order-1", EventTime: eventTime, SequenceID: &seq,
				Properties: map[string]string{"alpes-event-id": "e-1", "traceparent": "00-ab-cd-01", "empty": ""},
			},
			want: &wirev1.MessageMetadata{
				ProducerName: proto.String("relay.p"), SequenceId: proto.Uint64(uint64(seq)), PublishTime: proto.Uint64(1764151200000),
				Properties: []*wirev1.KeyValue{
					{Key: proto.String("alpes-event-id"), Value: proto.String("e-1")},
					{Key: proto.String("empty"), Value: proto.String("")},
					{Key: proto.String("traceparent"), Value: proto.String("00-ab-cd-01")},
				},
				PartitionKey: proto.String("order-1"), UncompressedSize: proto.Uint32(7), EventTime: proto.Uint64(uint64(eventTime.UnixMilli())),
			},
		},
		{
			name: "nothing optional",
			msg:  &pulsar.ProducerMessage{Payload: []byte{}, SequenceID: &seq},
			want: &wirev1.MessageMetadata{
				ProducerName: proto.String("relay.p"), SequenceId: proto.Uint64(uint64(seq)), PublishTime: proto.Uint64(1764151200000),
				UncompressedSize: proto.Uint32(0),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, size := appendSend([]byte("junk"), 7, "relay.p", uint64(seq), 1764151200000, tt.msg, false)
			frame := append(bytes.Clone(head[4:]), tt.msg.Payload...)
			f, err := pulsarwire.NewReader(bytes.NewReader(frame), 1<<20).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			wantCmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_SEND.Enum(), Send: &wirev1.CommandSend{ProducerId: proto.Uint64(7), SequenceId: proto.Uint64(uint64(seq))}}
			if !proto.Equal(f.Command, wantCmd) {
				t.Errorf("command %v, want %v", f.Command, wantCmd)
			}
			if err := f.Message.VerifyChecksum(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Message.Payload(), tt.msg.Payload) {
				t.Errorf("payload %q, want %q", f.Message.Payload(), tt.msg.Payload)
			}
			md, err := f.Message.DecodeMetadata()
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(md.Properties, func(a, b *wirev1.KeyValue) int { return strings.Compare(a.GetKey(), b.GetKey()) })
			if !proto.Equal(md, tt.want) {
				t.Errorf("metadata\n%v\nwant\n%v", md, tt.want)
			}
			if want := len(f.Message.Metadata()) + len(tt.msg.Payload); size != want {
				t.Errorf("size %d, want %d", size, want)
			}
		})
	}
}

func TestCorruptChecksumIsWrong(t *testing.T) {
	seq := int64(1)
	msg := &pulsar.ProducerMessage{Payload: []byte("x"), SequenceID: &seq}
	head, _ := appendSend(nil, 1, "p", 1, 1, msg, true)
	f, err := pulsarwire.ParseFrame(append(bytes.Clone(head[4:]), msg.Payload...))
	if err != nil {
		t.Fatal(err)
	}
	if f.Message.VerifyChecksum() == nil {
		t.Fatal("the corrupted checksum verifies")
	}
}

// TestReceiptsAreDecodedByHand: the fast path agrees with the general
// decoder, for a stored message and a dropped duplicate, and leaves other
// commands to it.
func TestReceiptsAreDecodedByHand(t *testing.T) {
	for _, id := range []*wirev1.MessageIdData{{LedgerId: proto.Uint64(12), EntryId: proto.Uint64(345)}, {LedgerId: proto.Uint64(^uint64(0)), EntryId: proto.Uint64(^uint64(0))}} {
		cmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_SEND_RECEIPT.Enum(), SendReceipt: &wirev1.CommandSendReceipt{
			ProducerId: proto.Uint64(3), SequenceId: proto.Uint64(1 << 40), MessageId: id,
		}}
		b, err := pulsarwire.AppendFrame(nil, cmd, nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := newFrameReader(bytes.NewReader(b)).next()
		if err != nil {
			t.Fatal(err)
		}
		want := receipt{producerID: 3, sequenceID: 1 << 40, ledgerID: int64(id.GetLedgerId()), entryID: int64(id.GetEntryId())}
		if f.cmd != nil || f.receipt != want {
			t.Errorf("read %+v, want receipt %+v", f, want)
		}
	}
	ping, _ := pulsarwire.AppendFrame(nil, &wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}, nil)
	f, err := newFrameReader(bytes.NewReader(ping)).next()
	if err != nil || f.cmd.GetType() != wirev1.BaseCommand_PING {
		t.Fatalf("read %+v, %v; want PING", f, err)
	}
}

func BenchmarkAppendSend(b *testing.B) {
	seq := int64(1)
	msg := &pulsar.ProducerMessage{
		Payload: make([]byte, 120), Key: "01935e1a-2b3c-7d4e-8f10-213243546576", EventTime: time.Now(), SequenceID: &seq,
		Properties: map[string]string{
			"alpes-event-id": "01935e1a-2b3c-7d4e-8f10-213243546577", "alpes-type": "alpes.orders.v1.PlaceOrder",
			"alpes-schema-version": "1", "alpes-aggregate-id": "01935e1a-2b3c-7d4e-8f10-213243546576",
			"alpes-commit-lsn": "0/16B3748", "alpes-commit-time": "2026-11-26T10:00:00Z",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendSend(buf[:0], 1, "relay.bench.0123456789abcdef.alpes.orders.commands.v1", 1, 1, msg, false)
	}
}
