package bff

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/relay"
)

// TestOrderThroughTheRelay runs the bff's half of the flow for real: POST
// writes the outbox row, the relay streams it to the broker as PlaceOrder
// keyed by the order id, the test plays the orders service by answering
// with events, and one long poll returns the confirmed order. The relay's
// lag shows in GET /v1/replication.
func TestOrderThroughTheRelay(t *testing.T) {
	lagLn, err := net.Listen("tcp", "127.0.0.1:0") // the relay's HTTP, known before the bff starts
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWithBroker(t, func(c *Config) { c.RelayLagURLs = []string{"http://" + lagLn.Addr().String() + "/v1/lag"} })
	r, err := relay.New(relay.Config{
		Sources: []relay.SourceConfig{{Name: "bff", DSN: e.db.DSNAs(migrations.RelayRole), Slot: e.db.Name,
			QuarantineTopic: e.topics().RelayQuarantine}},
		Pulsar: relay.PulsarConfig{URL: e.broker.ServiceURL, AdminURL: e.broker.AdminURL},
		Logger: testlog.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- r.Run(ctx) }()
	lagSrv := httptest.NewUnstartedServer(r.Handler())
	lagSrv.Listener.Close()
	lagSrv.Listener = lagLn
	lagSrv.Start()
	t.Cleanup(func() {
		cancel()
		<-relayDone
		lagSrv.Close()
	})
	waitFor(t, "the relay to stream", func() bool {
		lag := r.Lag()
		return len(lag) == 1 && lag[0].State == relay.StateStreaming
	})

	commands, err := e.client.Subscribe(pulsar.ConsumerOptions{
		Topic: e.topics().OrderCommands, SubscriptionName: "orders-test-" + brokertest.UniqueName(t),
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(commands.Close)

	id := e.placeOrder("e2e")
	rctx, rcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer rcancel()
	msg, err := commands.Receive(rctx)
	if err != nil {
		t.Fatalf("no PlaceOrder on %s: %v", e.topics().OrderCommands, err)
	}
	var cmd ordersv1.PlaceOrder
	if err := proto.Unmarshal(msg.Payload(), &cmd); err != nil {
		t.Fatal(err)
	}
	props := msg.Properties()
	if msg.Key() != id || cmd.GetOrderId() != id || props[eventmeta.Type] != "alpes.orders.v1.PlaceOrder" || props[eventmeta.EventID] == "" {
		t.Fatalf("message key %q props %v body %v", msg.Key(), props, &cmd)
	}

	e.publish(e.topics().OrderEvents, id, orderPlaced(id))
	e.publish(e.topics().OrderEvents, id, orderConfirmed(id))
	v, resp := e.getOrder("/v1/orders/" + id + "?wait=25s")
	if resp.StatusCode != http.StatusOK || v.Status != statusConfirmed {
		t.Fatalf("%d %s", resp.StatusCode, resp.body)
	}

	var rep replication
	waitFor(t, "the relay's lag in /v1/replication", func() bool {
		e.do(http.MethodGet, "/v1/replication", nil).json(t, &rep)
		return len(rep.Relays) == 1 && rep.Relays[0].Error == "" && len(rep.Relays[0].Sources) > 0
	})
}
