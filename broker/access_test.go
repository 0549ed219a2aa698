package broker_test

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Producer access modes, as Pulsar grants them: an exclusive producer is
// alone on its topic; a second one is fenced (ProducerFenced), a shared
// one is busy (ProducerBusy); WaitForExclusive waits for its turn;
// ExclusiveWithFencing takes the topic and fences whoever held it.

func TestExclusiveProducerIsAloneOnItsTopic(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	producer(t, c, pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	for mode, want := range map[pulsar.ProducerAccessMode]string{
		pulsar.ProducerAccessModeShared:    "ProducerBusy",
		pulsar.ProducerAccessModeExclusive: "ProducerFenced",
	} {
		if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: mode}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a producer of mode %d beside an exclusive one: err = %v, want %s", mode, err, want)
		}
	}

	shared := topic(t)
	producer(t, c, pulsar.ProducerOptions{Topic: shared})
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: shared, ProducerAccessMode: pulsar.ProducerAccessModeExclusive}); err == nil || !strings.Contains(err.Error(), "ProducerFenced") {
		t.Errorf("an exclusive producer beside a shared one: err = %v, want ProducerFenced", err)
	}
}

func TestWaitForExclusiveProducerGetsTheTopicWhenItIsFree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	first, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		p   pulsar.Producer
		err error
	}
	created := make(chan result, 1)
	go func() {
		p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeWaitForExclusive})
		created <- result{p, err}
	}()
	send(t, first, payloads("first-", 3)...)
	select {
	case r := <-created:
		t.Fatalf("the waiting producer was created while the exclusive one held the topic (err %v)", r.err)
	default:
	}
	first.Close()
	var r result
	select {
	case r = <-created:
	case <-time.After(receiveTimeout):
		t.Fatal("the waiting producer did not get the topic after the exclusive one closed")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.p.Close()
	send(t, r.p, payloads("second-", 1)...)
}

// pulsar-client-go v0.19 has no ExclusiveWithFencing, so the taker speaks
// the protocol itself.
func TestExclusiveWithFencingTakesTheTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	old := producer(t, c, pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive, DisableBatching: true})
	send(t, old, payloads("old-", 1)...)

	taker := dialWire(t, e.serviceURL)
	taker.write(t, &wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
		Topic: proto.String(tp), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(1),
		ProducerAccessMode: wirev1.ProducerAccessMode_ExclusiveWithFencing.Enum(),
	}})
	if got := taker.await(t, wirev1.BaseCommand_PRODUCER_SUCCESS, wirev1.BaseCommand_ERROR); got.GetType() != wirev1.BaseCommand_PRODUCER_SUCCESS {
		t.Fatalf("the fencing producer was refused: %v", got.GetError())
	}

	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	// The old producer lost the topic: its send fails, as fenced, or as
	// closed when the client has already handled the broker's close (which
	// of the two depends on the client's timing, on either broker).
	if _, err := old.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("old-1")}); err == nil ||
		!strings.Contains(err.Error(), "fenced") && !strings.Contains(err.Error(), "ProducerClosed") {
		t.Fatalf("the fenced producer's send: err = %v, want it fenced or closed", err)
	}
	// Another exclusive producer is fenced too while the taker holds the topic.
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive}); err == nil || !strings.Contains(err.Error(), "ProducerFenced") {
		t.Fatalf("an exclusive producer beside the fencing one: err = %v, want ProducerFenced", err)
	}
}

// wireConn is a connection speaking the binary protocol frame by frame.
type wireConn struct {
	nc net.Conn
	r  *pulsarwire.Reader
}

// dialWire connects to the broker at serviceURL and completes the handshake.
func dialWire(t *testing.T, serviceURL string) *wireConn {
	t.Helper()
	u, err := url.Parse(serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, receiveTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(receiveTimeout))
	c := &wireConn{nc: nc, r: pulsarwire.NewReader(nc, pulsarwire.MaxFrameSize(pulsarwire.DefaultMaxMessageSize))}
	c.write(t, &wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECT.Enum(), Connect: &wirev1.CommandConnect{
		ClientVersion: proto.String("alpes-test"), ProtocolVersion: proto.Int32(20)}})
	c.await(t, wirev1.BaseCommand_CONNECTED)
	return c
}

func (c *wireConn) write(t *testing.T, cmd *wirev1.BaseCommand) {
	t.Helper()
	b, err := pulsarwire.AppendFrame(nil, cmd, nil)
	if err == nil {
		_, err = c.nc.Write(b)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// await reads frames until one of the wanted types, answering pings.
func (c *wireConn) await(t *testing.T, want ...wirev1.BaseCommand_Type) *wirev1.BaseCommand {
	t.Helper()
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for %v: %v", want, err)
		}
		if slices.Contains(want, f.Command.GetType()) {
			return f.Command
		}
		if f.Command.GetType() == wirev1.BaseCommand_PING {
			c.write(t, &wirev1.BaseCommand{Type: wirev1.BaseCommand_PONG.Enum(), Pong: &wirev1.CommandPong{}})
		}
	}
}

// A producer may name a subscription for the broker to create at the
// earliest position: the client does so for dead-letter topics, so that
// dead letters are kept until someone reads them.
func TestProducerInitialSubscriptionKeepsDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	dlq := tp + "-DLQ"
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 20 * time.Millisecond,
		DLQ:                 &pulsar.DLQPolicy{MaxDeliveries: 2, DeadLetterTopic: dlq, InitialSubscriptionName: "keep"},
	})
	send(t, producer(t, c, pulsar.ProducerOptions{Topic: tp}), &pulsar.ProducerMessage{Payload: []byte("poison")})
	for range 2 {
		cs.Nack(receive(t, cs))
	}
	waitFor(t, "the dead letter on "+dlq, func() bool {
		var stats struct {
			MsgInCounter int64 `json:"msgInCounter"`
		}
		return e.admin(t, "GET", "/admin/v2/persistent/"+strings.TrimPrefix(dlq, "persistent://")+"/stats", "", &stats) == 200 && stats.MsgInCounter >= 1
	})
	// Subscribing at the latest position finds the dead letter only if the
	// subscription existed before it was written.
	keep := subscribe(t, c, pulsar.ConsumerOptions{Topic: dlq, SubscriptionName: "keep", SubscriptionInitialPosition: pulsar.SubscriptionPositionLatest})
	if m := receive(t, keep); string(m.Payload()) != "poison" {
		t.Fatalf("the kept dead letter is %q", m.Payload())
	}
}

// Deduplication state outlives a producer name's last producer only for
// the inactivity timeout (Pulsar's default: 6 hours; here shortened):
// afterwards the name starts afresh and a re-sent sequence id is stored
// again; a name with a connected producer keeps its state. Pulsar's
// timeout counts in minutes, so this runs on ours only.
func TestDeduplicationStateOfAnInactiveProducerIsForgotten(t *testing.T) {
	skipOnRealPulsar(t)
	t.Parallel()
	var logs syncBuffer
	cfg := testConfig()
	cfg.DeduplicationInactivityTimeout = 100 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := startBroker(t, cfg).client(t)
	tp := topic(t)
	seq := int64(7)
	sendAs := func(p pulsar.Producer) pulsar.MessageID {
		return send(t, p, &pulsar.ProducerMessage{Payload: []byte("m"), SequenceID: &seq})[0]
	}
	forgotten := func(name string) func() bool {
		return func() bool { return strings.Contains(logs.String(), "producer="+name+"\n") }
	}
	connected := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "connected", DisableBatching: true})
	sendAs(connected)
	gone := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "gone", DisableBatching: true})
	sendAs(gone)
	gone.Close()

	waitFor(t, "the state of the producer that left to be forgotten", forgotten("gone"))
	if forgotten("connected")() {
		t.Error("the state of a connected producer was forgotten")
	}
	if id := sendAs(connected); id.EntryID() >= 0 {
		t.Errorf("a re-send from the connected producer was stored as %v", id)
	}
	back := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "gone", DisableBatching: true})
	if id := sendAs(back); id.EntryID() < 0 {
		t.Errorf("a re-send under the forgotten name was dropped as a duplicate (%v)", id)
	}
}
