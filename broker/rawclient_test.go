package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// rawClient speaks the protocol by hand, frame by frame, for the tests
// that do what no well-behaved client does.

func startRaw(t testing.TB, mutate func(*Config)) *Broker {
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
	t  testing.TB
	nc net.Conn
	r  *pulsarwire.Reader
}

func dialRaw(t testing.TB, b *Broker) *rawClient {
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

// expectOneOf reads frames until one of the given types arrives.
func (c *rawClient) expectOneOf(types ...wirev1.BaseCommand_Type) *wirev1.BaseCommand {
	c.t.Helper()
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			c.t.Fatalf("waiting for one of %v: %v", types, err)
		}
		if slices.Contains(types, f.Command.GetType()) {
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

func mustFrame(t testing.TB, cmd *wirev1.BaseCommand) []byte {
	return mustFrameMsg(t, cmd, nil)
}

func mustFrameMsg(t testing.TB, cmd *wirev1.BaseCommand, msg *pulsarwire.Message) []byte {
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
