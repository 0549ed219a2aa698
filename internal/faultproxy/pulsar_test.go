package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// pulsarStream is what the fake broker sends: a ping, a lookup answer
// pointing at the broker itself, and a message with a payload, so the test
// sees a rewritten frame between two that must pass byte for byte.
func pulsarStream(t *testing.T) []byte {
	t.Helper()
	var out []byte
	var err error
	ping := &wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}
	lookup := &wirev1.BaseCommand{
		Type: wirev1.BaseCommand_LOOKUP_RESPONSE.Enum(),
		LookupTopicResponse: &wirev1.CommandLookupTopicResponse{
			RequestId:        proto.Uint64(7),
			BrokerServiceUrl: proto.String("pulsar://127.0.0.1:16650"),
			Response:         wirev1.CommandLookupTopicResponse_Connect.Enum(),
			Authoritative:    proto.Bool(true),
		},
	}
	msg, err := pulsarwire.NewMessage(&wirev1.MessageMetadata{
		ProducerName: proto.String("p"), SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1),
	}, bytes.Repeat([]byte("payload"), 20000)) // larger than a chunk: streamed through
	if err != nil {
		t.Fatal(err)
	}
	send := &wirev1.BaseCommand{Type: wirev1.BaseCommand_MESSAGE.Enum(), Message: &wirev1.CommandMessage{
		ConsumerId: proto.Uint64(1), MessageId: &wirev1.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(2)},
	}}
	for _, f := range []struct {
		cmd *wirev1.BaseCommand
		msg *pulsarwire.Message
	}{{ping, nil}, {lookup, nil}, {send, msg}} {
		if out, err = pulsarwire.AppendFrame(out, f.cmd, f.msg); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPulsarProxyKeepsClientsOnTheProxy: through a Pulsar proxy, a lookup
// answer comes back with proxy_through_service_url set and otherwise
// unchanged, and the frames around it arrive byte for byte, even when the
// broker writes the stream a few bytes at a time.
func TestPulsarProxyKeepsClientsOnTheProxy(t *testing.T) {
	stream := pulsarStream(t)
	s := startServer(t, func(_ *server, c *net.TCPConn) {
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 5)
			if _, err := c.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
		c.CloseWrite()
		io.Copy(io.Discard, c)
	})
	p := NewPulsar(t, s.addr)
	c := dial(t, p.Addr())
	c.SetReadDeadline(time.Now().Add(patience))
	r := pulsarwire.NewReader(c, pulsarwire.MaxFrameSize(pulsarwire.DefaultMaxMessageSize))

	frames := make([]*pulsarwire.Frame, 3)
	for i := range frames {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		frames[i] = f
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
	if frames[0].Command.GetType() != wirev1.BaseCommand_PING {
		t.Errorf("first frame %s, want PING", frames[0].Command.GetType())
	}
	got := frames[1].Command.GetLookupTopicResponse()
	if !got.GetProxyThroughServiceUrl() || got.GetBrokerServiceUrl() != "pulsar://127.0.0.1:16650" || got.GetRequestId() != 7 || !got.GetAuthoritative() {
		t.Errorf("lookup answer through the proxy: %v", got)
	}
	want, err := pulsarwire.ParseFrame(stream[len(stream)-len(lastFrame(t, stream))+4:])
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(frames[2].Command, want.Command) || !bytes.Equal(frames[2].Message.Raw, want.Message.Raw) || frames[2].Message.VerifyChecksum() != nil {
		t.Error("the message frame changed through the proxy")
	}
}

// lastFrame returns the last frame of stream, with its size prefix.
func lastFrame(t *testing.T, stream []byte) []byte {
	t.Helper()
	var last []byte
	for rest := stream; len(rest) > 0; {
		n := 4 + int(uint32(rest[0])<<24|uint32(rest[1])<<16|uint32(rest[2])<<8|uint32(rest[3]))
		last, rest = rest[:n], rest[n:]
	}
	return last
}

// TestPulsarProxyResetsOnGarbage: a server that does not speak Pulsar's
// framing gets its client's connection reset rather than passed garbage.
func TestPulsarProxyResetsOnGarbage(t *testing.T) {
	s := startServer(t, func(_ *server, c *net.TCPConn) {
		c.Write([]byte{0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
		io.Copy(io.Discard, c)
	})
	p := NewPulsar(t, s.addr)
	c, err := net.DialTimeout("tcp", p.Addr(), patience)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) { // the reset may beat the handshake's end
			t.Fatalf("dialing: %v; want success or ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(patience))
	n, err := io.Copy(io.Discard, c)
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %d bytes, then %v; want a reset and nothing before it", n, err)
	}
}
