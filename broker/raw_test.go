package broker

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// These tests speak the protocol by hand, to do what no well-behaved
// client does: corrupt frames, skip the handshake, stay silent.

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

// TestProducerLearnsTheLastPushedSequenceID: PRODUCER_SUCCESS carries the
// highest sequence id the broker has taken under the name, persisted or
// not, as Pulsar's (MessageDeduplication.getLastPublishedSequenceId reads
// the pushed ids). A producer that resumes after a connection whose last
// send is still being written must not take that id for free: the relay
// batches only above it (docs/adr/0008).
func TestProducerLearnsTheLastPushedSequenceID(t *testing.T) {
	fs := NewFaultFS()
	b := startRaw(t, func(c *Config) {
		c.DataDir = t.TempDir()
		*c = WithStorage(*c, fs)
	})
	c := dialRaw(t, b)
	c.connect("")
	c.createProducer("pushed", "p")
	c.write(sendCommand(0), rawMessage(t, "p", 0, "persisted"))
	c.expect(wirev1.BaseCommand_SEND_RECEIPT)

	release := fs.HoldSyncs()
	defer release()
	c.write(sendCommand(1), rawMessage(t, "p", 1, "pushed, not persisted"))
	c.nc.Close() // before its receipt, which waits for the sync

	c2 := dialRaw(t, b)
	c2.connect("")
	for reqID := uint64(1); ; reqID++ {
		c2.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
			Topic: proto.String("pushed"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(reqID), ProducerName: proto.String("p"),
		}}, nil)
		cmd := c2.expectOneOf(wirev1.BaseCommand_PRODUCER_SUCCESS, wirev1.BaseCommand_ERROR)
		if ps := cmd.GetProducerSuccess(); ps != nil {
			if got := ps.GetLastSequenceId(); got != 1 {
				t.Fatalf("last sequence id %d, want 1 (pushed while the previous connection lived)", got)
			}
			return
		}
		if cmd.GetError().GetError() != wirev1.ServerError_ProducerBusy {
			t.Fatalf("claiming the name: %v", cmd)
		}
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

// TestEntriesReplayedByteForByte checks that what a producer sent is what
// a consumer receives, checksum included, without re-encoding.
func TestEntriesReplayedByteForByte(t *testing.T) {
	b := startRaw(t, nil)
	c := dialRaw(t, b)
	c.connect("")
	c.createProducer("bytes-topic", "p")
	c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wirev1.CommandSubscribe{
		Topic: proto.String("bytes-topic"), Subscription: proto.String("s"),
		SubType: wirev1.CommandSubscribe_Exclusive.Enum(), ConsumerId: proto.Uint64(7), RequestId: proto.Uint64(2),
	}}, nil)
	c.expect(wirev1.BaseCommand_SUCCESS)
	c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_FLOW.Enum(), Flow: &wirev1.CommandFlow{
		ConsumerId: proto.Uint64(7), MessagePermits: proto.Uint32(10),
	}}, nil)

	sent, err := pulsarwire.NewMessage(&wirev1.MessageMetadata{
		ProducerName: proto.String("p"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1),
		NumMessagesInBatch: proto.Int32(3), Compression: wirev1.CompressionType_LZ4.Enum(),
	}, []byte("opaque batch payload the broker must not touch"))
	if err != nil {
		t.Fatal(err)
	}
	c.write(sendCommand(0), sent)
	for { // the MESSAGE may come before or after the SEND_RECEIPT
		f, err := c.r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Command.GetType() != wirev1.BaseCommand_MESSAGE {
			continue
		}
		if f.Command.GetMessage().GetConsumerId() != 7 || f.Message == nil {
			t.Fatalf("MESSAGE %v", f.Command)
		}
		if f.Message.Checksum != sent.Checksum || !bytes.Equal(f.Message.Raw, sent.Raw) {
			t.Fatal("the entry changed between SEND and MESSAGE")
		}
		return
	}
}

// TestProducerNameFreedFromDeadConnection: a connection that stopped
// answering (half-open, as after a network cut) loses its producer names
// as soon as another connection claims one, not only at keep-alive expiry.
func TestProducerNameFreedFromDeadConnection(t *testing.T) {
	b := startRaw(t, func(c *Config) { c.keepAliveInterval = 600 * time.Millisecond })
	dead := dialRaw(t, b)
	dead.connect("")
	dead.createProducer("liveness", "relay") // then never writes again

	c := dialRaw(t, b)
	c.connect("")
	claim := func(reqID uint64) *wirev1.BaseCommand {
		c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
			Topic: proto.String("liveness"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(reqID),
			ProducerName: proto.String("relay"),
		}}, nil)
		return c.expectOneOf(wirev1.BaseCommand_PRODUCER_SUCCESS, wirev1.BaseCommand_ERROR)
	}
	if e := claim(1).GetError(); e.GetError() != wirev1.ServerError_ProducerBusy {
		t.Fatalf("claiming a held name: %v", e)
	}
	dead.expectClosed() // the broker's probe went unanswered
	// The broker releases the name just after closing the connection:
	// claim again until it is free (the connection's deadline bounds this).
	for reqID := uint64(2); ; reqID++ {
		cmd := claim(reqID)
		if cmd.GetType() == wirev1.BaseCommand_PRODUCER_SUCCESS {
			return
		}
		if cmd.GetError().GetError() != wirev1.ServerError_ProducerBusy {
			t.Fatalf("claiming the freed name: %v", cmd)
		}
	}
}

// TestStickyRangesFreedFromDeadConnection: the hash ranges of a sticky
// Key_Shared consumer on a connection that stopped answering are freed as
// soon as another consumer claims them, as Pulsar checks the holder's
// liveness, not only at keep-alive expiry.
func TestStickyRangesFreedFromDeadConnection(t *testing.T) {
	// The probe gives up after a second; the keep-alive would close the
	// connection only after 12 s, beyond the raw clients' 10 s deadline.
	b := startRaw(t, func(c *Config) { c.keepAliveInterval = 6 * time.Second })
	subscribe := func(c *rawClient, reqID uint64) *wirev1.BaseCommand {
		c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wirev1.CommandSubscribe{
			Topic: proto.String("liveness"), Subscription: proto.String("s"),
			SubType:    wirev1.CommandSubscribe_Key_Shared.Enum(),
			ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(reqID),
			KeySharedMeta: &wirev1.KeySharedMeta{KeySharedMode: wirev1.KeySharedMode_STICKY.Enum(),
				HashRanges: []*wirev1.IntRange{{Start: proto.Int32(0), End: proto.Int32(65535)}}},
		}}, nil)
		return c.expectOneOf(wirev1.BaseCommand_SUCCESS, wirev1.BaseCommand_ERROR)
	}
	dead := dialRaw(t, b)
	dead.connect("")
	if cmd := subscribe(dead, 1); cmd.GetType() != wirev1.BaseCommand_SUCCESS {
		t.Fatalf("first sticky consumer: %v", cmd)
	} // then it never writes again

	c := dialRaw(t, b)
	c.connect("")
	if e := subscribe(c, 1).GetError(); e.GetError() != wirev1.ServerError_ConsumerAssignError {
		t.Fatalf("claiming held ranges: %v", e)
	}
	dead.expectClosed() // the broker's probe went unanswered
	// The ranges are freed just after the connection closes: claim again
	// until they are (the connection's deadline bounds this).
	for reqID := uint64(2); ; reqID++ {
		cmd := subscribe(c, reqID)
		if cmd.GetType() == wirev1.BaseCommand_SUCCESS {
			return
		}
		if cmd.GetError().GetError() != wirev1.ServerError_ConsumerAssignError {
			t.Fatalf("claiming the freed ranges: %v", cmd)
		}
	}
}

// TestProducerSuccessAlwaysCarriesASchemaVersion: Pulsar's PRODUCER_SUCCESS
// always sets schema_version, empty for a producer without a schema, and
// the Java client refuses one without it ("Field 'schema_version' is not
// set"), retrying forever; Debezium Server's Pulsar sink could not publish
// to the embedded broker. pulsar-client-go does not mind, so only the raw
// answer shows it.
func TestProducerSuccessAlwaysCarriesASchemaVersion(t *testing.T) {
	c := dialRaw(t, startRaw(t, nil))
	c.connect("")
	ps := c.createProducer("persistent://public/default/schemaless", "p")
	if ps.SchemaVersion == nil {
		t.Fatal("PRODUCER_SUCCESS without schema_version")
	}
	if len(ps.SchemaVersion) != 0 {
		t.Errorf("schema_version %x for a producer without a schema, want empty", ps.SchemaVersion)
	}
}
