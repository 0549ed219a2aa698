package pulsarbroker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// These tests speak the protocol by hand, to do what no well-behaved
// client does: corrupt frames, skip the handshake, stay silent.

func startRaw(t *testing.T, mutate func(*Config)) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ServiceAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  *pulsarwire.Reader
}

func dialRaw(t *testing.T, b *Broker) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, nc: nc, r: pulsarwire.NewReader(nc, pulsarwire.MaxFrameSize(pulsarwire.DefaultMaxMessageSize))}
}

func (c *rawClient) write(cmd *wirev1.BaseCommand, msg *pulsarwire.Message) {
	c.t.Helper()
	b, err := pulsarwire.AppendFrame(nil, cmd, msg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeBytes(b)
}

func (c *rawClient) writeBytes(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads frames until one of type want arrives, answering pings.
func (c *rawClient) expect(want wirev1.BaseCommand_Type) *wirev1.BaseCommand {
	c.t.Helper()
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", want, err)
		}
		if f.Command.GetType() == want {
			return f.Command
		}
	}
}

// expectClosed asserts that the broker closes the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	for {
		_, err := c.r.ReadFrame()
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
			c.t.Fatalf("want the connection closed, got %v", err)
		}
		return
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func (c *rawClient) connect(token string) *wirev1.BaseCommand {
	c.t.Helper()
	connect := &wirev1.CommandConnect{ClientVersion: proto.String("raw"), ProtocolVersion: proto.Int32(20)}
	if token != "" {
		connect.AuthMethodName = proto.String("token")
		connect.AuthData = []byte(token)
	}
	c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECT.Enum(), Connect: connect}, nil)
	f, err := c.r.ReadFrame()
	if err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	return f.Command
}

func (c *rawClient) createProducer(topic, name string) *wirev1.CommandProducerSuccess {
	c.t.Helper()
	c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
		Topic: proto.String(topic), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(1), ProducerName: proto.String(name),
	}}, nil)
	return c.expect(wirev1.BaseCommand_PRODUCER_SUCCESS).GetProducerSuccess()
}

func sendCommand(seq uint64) *wirev1.BaseCommand {
	return &wirev1.BaseCommand{Type: wirev1.BaseCommand_SEND.Enum(), Send: &wirev1.CommandSend{
		ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(seq),
	}}
}

func rawMessage(t *testing.T, name string, seq uint64, payload string) *pulsarwire.Message {
	t.Helper()
	msg, err := pulsarwire.NewMessage(&wirev1.MessageMetadata{
		ProducerName: proto.String(name), SequenceId: proto.Uint64(seq), PublishTime: proto.Uint64(1),
	}, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestHandshakeAndPing(t *testing.T) {
	b := startRaw(t, nil)
	c := dialRaw(t, b)
	connected := c.connect("").GetConnected()
	if connected.GetProtocolVersion() != 20 || connected.GetMaxMessageSize() != pulsarwire.DefaultMaxMessageSize {
		t.Fatalf("CONNECTED %v", connected)
	}
	c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}, nil)
	c.expect(wirev1.BaseCommand_PONG)
}

func TestBrokerPingsAndDropsSilentClients(t *testing.T) {
	b := startRaw(t, func(c *Config) { c.keepAliveInterval = 50 * time.Millisecond })
	c := dialRaw(t, b)
	c.connect("")
	c.expect(wirev1.BaseCommand_PING) // the broker checks on idle clients
	c.expectClosed()                  // and drops one that never answers
}

func TestSendErrorsAndDuplicateReceipt(t *testing.T) {
	b := startRaw(t, nil)
	c := dialRaw(t, b)
	c.connect("")
	if got := c.createProducer("raw-topic", "p").GetLastSequenceId(); got != -1 {
		t.Fatalf("last sequence id of a new producer %d, want -1", got)
	}

	bad := rawMessage(t, "p", 0, "hello")
	bad.Checksum++
	c.write(sendCommand(0), bad)
	if e := c.expect(wirev1.BaseCommand_SEND_ERROR).GetSendError(); e.GetError() != wirev1.ServerError_ChecksumError {
		t.Fatalf("bad checksum answered with %v", e)
	}

	c.write(sendCommand(0), rawMessage(t, "p", 0, "hello"))
	if r := c.expect(wirev1.BaseCommand_SEND_RECEIPT).GetSendReceipt(); int64(r.GetMessageId().GetEntryId()) != 0 {
		t.Fatalf("receipt %v, want entry 0", r)
	}
	c.write(sendCommand(0), rawMessage(t, "p", 0, "hello"))
	if r := c.expect(wirev1.BaseCommand_SEND_RECEIPT).GetSendReceipt(); int64(r.GetMessageId().GetEntryId()) != -1 ||
		int64(r.GetMessageId().GetLedgerId()) != -1 {
		t.Fatalf("duplicate receipt %v, want ledger and entry -1", r)
	}

	// A second connection with the same producer name is refused; after
	// the first closes, the name is free and carries the last sequence id.
	c2 := dialRaw(t, b)
	c2.connect("")
	c2.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
		Topic: proto.String("raw-topic"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(1), ProducerName: proto.String("p"),
	}}, nil)
	if e := c2.expect(wirev1.BaseCommand_ERROR).GetError(); e.GetError() != wirev1.ServerError_ProducerBusy {
		t.Fatalf("second producer named p: %v", e)
	}
	c.nc.Close()
	c3 := dialRaw(t, b)
	c3.connect("")
	for {
		c3.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
			Topic: proto.String("raw-topic"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(2), ProducerName: proto.String("p"),
		}}, nil)
		f, err := c3.r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if ps := f.Command.GetProducerSuccess(); ps != nil {
			if ps.GetLastSequenceId() != 0 {
				t.Fatalf("last sequence id %d, want 0", ps.GetLastSequenceId())
			}
			break
		}
		// ProducerBusy until the broker has noticed the first connection
		// closing: retry, as the client does.
	}
}

func TestMalformedFramesCloseTheConnection(t *testing.T) {
	b := startRaw(t, nil)
	connectFrame, _ := pulsarwire.AppendFrame(nil, &wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECT.Enum(),
		Connect: &wirev1.CommandConnect{ClientVersion: proto.String("raw")}}, nil)
	tests := []struct {
		name      string
		handshake bool
		bytes     []byte
	}{
		{"garbage instead of CONNECT", false, []byte("GET / HTTP/1.1\r\n\r\n")},
		{"first frame not CONNECT", false, mustFrame(t, &wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum()})},
		{"oversize frame", true, binary.BigEndian.AppendUint32(nil, 64<<20)},
		{"garbage command", true, []byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}},
		{"command size beyond frame", true, []byte{0, 0, 0, 4, 0, 0, 1, 0}},
		{"SEND without message", true, mustFrame(t, sendCommand(0))},
		{"SEND from unknown producer", true, mustFrameMsg(t, sendCommand(0), rawMessage(t, "x", 0, "y"))},
		{"truncated frame then EOF", true, connectFrame[:len(connectFrame)-2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, b)
			if tt.handshake {
				c.connect("")
			}
			c.writeBytes(tt.bytes)
			if tt.name == "truncated frame then EOF" {
				c.nc.(*net.TCPConn).CloseWrite()
			}
			c.expectClosed()
		})
	}
	// The broker is still serving.
	c := dialRaw(t, b)
	c.connect("")
	c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}, nil)
	c.expect(wirev1.BaseCommand_PONG)
}

func mustFrame(t *testing.T, cmd *wirev1.BaseCommand) []byte {
	return mustFrameMsg(t, cmd, nil)
}

func mustFrameMsg(t *testing.T, cmd *wirev1.BaseCommand, msg *pulsarwire.Message) []byte {
	t.Helper()
	if cmd.GetType() == wirev1.BaseCommand_PING && cmd.Ping == nil {
		cmd.Ping = &wirev1.CommandPing{}
	}
	b, err := pulsarwire.AppendFrame(nil, cmd, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTokenAuthentication(t *testing.T) {
	b := startRaw(t, func(c *Config) { c.AuthToken = "s3cret" })
	if cmd := dialRaw(t, b).connect("s3cret"); cmd.GetType() != wirev1.BaseCommand_CONNECTED {
		t.Fatalf("right token: %v", cmd)
	}
	for _, token := range []string{"", "wrong"} {
		c := dialRaw(t, b)
		cmd := c.connect(token)
		if cmd.GetType() != wirev1.BaseCommand_ERROR || cmd.GetError().GetError() != wirev1.ServerError_AuthenticationError {
			t.Fatalf("token %q: %v", token, cmd)
		}
		c.expectClosed()
	}
}
