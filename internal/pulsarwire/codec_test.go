package pulsarwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

func pingCommand() *wirev1.BaseCommand {
	return &wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}
}

func sendCommand() *wirev1.BaseCommand {
	return &wirev1.BaseCommand{
		Type: wirev1.BaseCommand_SEND.Enum(),
		Send: &wirev1.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(7)},
	}
}

func testMessage(t *testing.T) *Message {
	t.Helper()
	msg, err := NewMessage(&wirev1.MessageMetadata{
		ProducerName: proto.String("p"),
		SequenceId:   proto.Uint64(7),
		PublishTime:  proto.Uint64(1700000000000),
		PartitionKey: proto.String("order-1"),
	}, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestRoundTrip(t *testing.T) {
	msg := testMessage(t)
	tests := []struct {
		name string
		cmd  *wirev1.BaseCommand
		msg  *Message
	}{
		{"simple command", pingCommand(), nil},
		{"payload command", sendCommand(), msg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendFrame(nil, tt.cmd, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint32(b); int(got) != len(b)-4 {
				t.Fatalf("total size %d, frame has %d bytes after it", got, len(b)-4)
			}
			f, err := NewReader(bytes.NewReader(b), MaxFrameSize(DefaultMaxMessageSize)).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(f.Command, tt.cmd) {
				t.Fatalf("command %v, want %v", f.Command, tt.cmd)
			}
			if tt.msg == nil {
				if f.Message != nil {
					t.Fatalf("simple command decoded with a message")
				}
				return
			}
			if err := f.Message.VerifyChecksum(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Message.Raw, tt.msg.Raw) || string(f.Message.Payload()) != "hello" {
				t.Fatalf("message bytes changed in transit")
			}
			md, err := f.Message.DecodeMetadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.GetPartitionKey() != "order-1" || md.GetSequenceId() != 7 {
				t.Fatalf("metadata %v", md)
			}
		})
	}
}

func TestBrokerEntryMetadataIsSkipped(t *testing.T) {
	msg := testMessage(t)
	cmd, _ := proto.Marshal(sendCommand())
	var body []byte
	body = binary.BigEndian.AppendUint32(body, uint32(len(cmd)))
	body = append(body, cmd...)
	body = binary.BigEndian.AppendUint16(body, magicBrokerEntryMetadata)
	body = binary.BigEndian.AppendUint32(body, 3)
	body = append(body, 0x08, 0x01, 0x10)
	body = binary.BigEndian.AppendUint16(body, magicChecksum)
	body = binary.BigEndian.AppendUint32(body, msg.Checksum)
	body = append(body, msg.Raw...)
	f, err := ParseFrame(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Message.VerifyChecksum(); err != nil {
		t.Fatal(err)
	}
}

func TestChecksumMismatch(t *testing.T) {
	msg := testMessage(t)
	b, _ := AppendFrame(nil, sendCommand(), msg)
	b[len(b)-1] ^= 0xff // flip a payload byte
	f, err := ParseFrame(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Message.VerifyChecksum(); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("VerifyChecksum = %v, want ErrChecksumMismatch", err)
	}
}

func TestMalformedFrames(t *testing.T) {
	good, _ := AppendFrame(nil, sendCommand(), testMessage(t))
	body := good[4:]
	cmdSize := int(binary.BigEndian.Uint32(body))
	withCmdSize := func(n uint32) []byte {
		b := bytes.Clone(body)
		binary.BigEndian.PutUint32(b, n)
		return b
	}
	withMetadataSize := func(n uint32) []byte {
		b := bytes.Clone(body)
		binary.BigEndian.PutUint32(b[4+cmdSize+6:], n)
		return b
	}
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"short command size", []byte{0, 0}},
		{"command size beyond frame", withCmdSize(1 << 30)},
		{"garbage command", append([]byte{0, 0, 0, 4}, 0xff, 0xff, 0xff, 0xff)},
		{"command without type", []byte{0, 0, 0, 0}},
		{"truncated checksum block", body[:4+cmdSize+3]},
		{"truncated metadata size", body[:4+cmdSize+6+2]},
		{"metadata size beyond frame", withMetadataSize(1 << 30)},
		{"truncated broker entry metadata", append(append([]byte(nil), body[:4+cmdSize]...), 0x0e, 0x02, 0, 0, 0, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseFrame(tt.body); !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("ParseFrame = %v, want ErrMalformedFrame", err)
			}
		})
	}
}

func TestReaderLimitsAndTruncation(t *testing.T) {
	good, _ := AppendFrame(nil, pingCommand(), nil)
	t.Run("oversize frame is refused before it is read", func(t *testing.T) {
		b := binary.BigEndian.AppendUint32(nil, 1<<31)
		if _, err := NewReader(bytes.NewReader(b), 1024).ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("ReadFrame = %v, want ErrFrameTooLarge", err)
		}
	})
	t.Run("clean end of stream", func(t *testing.T) {
		if _, err := NewReader(bytes.NewReader(nil), 1024).ReadFrame(); err != io.EOF {
			t.Fatalf("ReadFrame = %v, want io.EOF", err)
		}
	})
	t.Run("stream ends inside a frame", func(t *testing.T) {
		r := NewReader(bytes.NewReader(good[:len(good)-1]), 1024)
		if _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
			t.Fatalf("ReadFrame = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("frames back to back", func(t *testing.T) {
		b, _ := AppendFrame(nil, pingCommand(), nil)
		b, _ = AppendFrame(b, sendCommand(), testMessage(t))
		r := NewReader(bytes.NewReader(b), 1024)
		for _, want := range []wirev1.BaseCommand_Type{wirev1.BaseCommand_PING, wirev1.BaseCommand_SEND} {
			f, err := r.ReadFrame()
			if err != nil || f.Command.GetType() != want {
				t.Fatalf("ReadFrame = %v, %v, want %v", f, err, want)
			}
		}
	})
}

func TestAppendFrameRefusesIncompleteCommand(t *testing.T) {
	// A missing required field is a bug in the broker: it must not reach
	// the wire, where the client would fail to decode it.
	cmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_SUCCESS.Enum(), Success: &wirev1.CommandSuccess{}}
	if _, err := AppendFrame(nil, cmd, nil); err == nil {
		t.Fatal("AppendFrame accepted a command without its required request_id")
	}
}

func FuzzParseFrame(f *testing.F) {
	ping, _ := AppendFrame(nil, pingCommand(), nil)
	f.Add(ping[4:])
	msg, _ := NewMessage(&wirev1.MessageMetadata{
		ProducerName: proto.String("p"), SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1),
	}, []byte("x"))
	send, _ := AppendFrame(nil, sendCommand(), msg)
	f.Add(send[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := ParseFrame(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("ParseFrame error %v does not wrap ErrMalformedFrame", err)
			}
			return
		}
		if fr.Message != nil {
			_ = fr.Message.VerifyChecksum()
			_ = fr.Message.Payload()
			_, _ = fr.Message.DecodeMetadata()
		}
	})
}
