package broker

import (
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// FuzzConnection feeds arbitrary bytes, after a valid CONNECT, to one
// broker; whatever a client sends, the broker must neither crash nor stop
// serving others. Seeds are well-formed command sequences to mutate.
func FuzzConnection(f *testing.F) {
	seed := func(cmds ...*wirev1.BaseCommand) []byte {
		var b []byte
		for _, c := range cmds {
			b = append(b, mustFrame(f, c)...)
		}
		return b
	}
	producerCmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER.Enum(), Producer: &wirev1.CommandProducer{
		Topic: proto.String("fuzz"), ProducerId: proto.Uint64(1), RequestId: proto.Uint64(1),
	}}
	subscribeCmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &wirev1.CommandSubscribe{
		Topic: proto.String("fuzz"), Subscription: proto.String("s"), SubType: wirev1.CommandSubscribe_Key_Shared.Enum(),
		ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2),
	}}
	flowCmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_FLOW.Enum(), Flow: &wirev1.CommandFlow{
		ConsumerId: proto.Uint64(1), MessagePermits: proto.Uint32(10),
	}}
	ackCmd := &wirev1.BaseCommand{Type: wirev1.BaseCommand_ACK.Enum(), Ack: &wirev1.CommandAck{
		ConsumerId: proto.Uint64(1), AckType: wirev1.CommandAck_Cumulative.Enum(),
		MessageId: []*wirev1.MessageIdData{{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(0)}},
	}}
	f.Add(seed(producerCmd, subscribeCmd, flowCmd, ackCmd))
	f.Add(seed(subscribeCmd, flowCmd, &wirev1.BaseCommand{Type: wirev1.BaseCommand_SEEK.Enum(), Seek: &wirev1.CommandSeek{
		ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(3), MessagePublishTime: proto.Uint64(0),
	}}))

	b := startRaw(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		nc.Write(mustFrame(t, &wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECT.Enum(),
			Connect: &wirev1.CommandConnect{ClientVersion: proto.String("fuzz")}}))
		nc.Write(data)
		nc.Close()

		c := dialRaw(t, b)
		c.connect("")
		c.write(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}, nil)
		c.expect(wirev1.BaseCommand_PONG)
	})
}
