package pulsarsend_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// Contract tests against the test's broker: embedded by default, the real
// Pulsar of the run with ALPES_PULSAR_URL and ALPES_PULSAR_ADMIN_URL.

const waitTimeout = 30 * time.Second

func newClient(t *testing.T, url string, opts pulsarsend.Options) *pulsarsend.Client {
	t.Helper()
	opts.URL = url
	c, err := pulsarsend.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func createProducer(t *testing.T, c *pulsarsend.Client, topic, name string) *pulsarsend.Producer {
	t.Helper()
	p, err := c.CreateProducer(context.Background(), topic, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// result is what a send's callback was called with.
type result struct {
	receipt pulsarsend.Receipt
	err     error
}

// send sends msg under seq and returns where its result will arrive.
func send(t *testing.T, p *pulsarsend.Producer, seq int64, msg pulsar.ProducerMessage) <-chan result {
	t.Helper()
	msg.SequenceID = &seq
	ch := make(chan result, 1)
	if err := p.Send(&msg, func(r pulsarsend.Receipt, err error) { ch <- result{r, err} }); err != nil {
		t.Fatalf("Send(%d): %v", seq, err)
	}
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("no receipt nor error")
		return result{}
	}
}

// TestConsumersSeeWhatTheGoClientSends: a message sent by pulsarsend and the
// same ProducerMessage sent by pulsar-client-go (unbatched, as the relay
// sent it before) read the same through a pulsar-client-go Key_Shared
// consumer.
func TestConsumersSeeWhatTheGoClientSends(t *testing.T) {
	b := brokertest.Start(t)
	topic := b.Topic(t, "events.v1")
	goClient := b.Client(t)
	consumer, err := goClient.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "check", Type: pulsar.KeyShared, SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()

	msg := pulsar.ProducerMessage{
		Payload:   []byte("\x0a\x24order payload\x00\xff"),
		Key:       "01935e1a-2b3c-7d4e-8f10-213243546576",
		EventTime: time.Date(2026, 11, 26, 10, 0, 0, 123_000_000, time.UTC),
		Properties: map[string]string{
			"alpes-event-id": "01935e1a-2b3c-7d4e-8f10-213243546577", "alpes-type": "alpes.orders.v1.PlaceOrder",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "empty": "",
		},
	}
	theirs, err := goClient.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "go-client", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	goMsg := msg
	goMsg.SequenceID = new(int64(5))
	if _, err := theirs.Send(context.Background(), &goMsg); err != nil {
		t.Fatal(err)
	}
	ours := createProducer(t, newClient(t, b.ServiceURL, pulsarsend.Options{}), topic, "pulsarsend")
	if r := await(t, send(t, ours, 5, msg)); r.err != nil || r.receipt.Duplicate() || r.receipt.SequenceID != 5 {
		t.Fatalf("receipt %+v, %v", r.receipt, r.err)
	}

	got := map[string]pulsar.Message{}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for len(got) < 2 {
		m, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		consumer.Ack(m)
		got[m.ProducerName()] = m
	}
	a, o := got["go-client"], got["pulsarsend"]
	if a == nil || o == nil {
		t.Fatalf("received from %v", slices.Collect(maps.Keys(got)))
	}
	for _, m := range []pulsar.Message{a, o} {
		if m.Key() != msg.Key || string(m.Payload()) != string(msg.Payload) || !maps.Equal(m.Properties(), msg.Properties) ||
			!m.EventTime().Equal(msg.EventTime) || m.PublishTime().IsZero() || m.OrderingKey() != "" || m.RedeliveryCount() != 0 {
			t.Errorf("%s's message: key %q, payload %q, properties %v, event time %s, publish time %s, ordering key %q",
				m.ProducerName(), m.Key(), m.Payload(), m.Properties(), m.EventTime(), m.PublishTime(), m.OrderingKey())
		}
		if m.ID().BatchIdx() != -1 && m.ID().BatchIdx() != 0 || m.ID().BatchSize() > 1 {
			t.Errorf("%s's message came in a batch: %v", m.ProducerName(), m.ID())
		}
	}
	if a.PublishTime().Sub(o.PublishTime()).Abs() > time.Minute {
		t.Errorf("publish times %s and %s", a.PublishTime(), o.PublishTime())
	}
}

// TestResendUnderTheSameNameIsDropped: a producer registering under a name
// learns the broker's last sequence id; what it sends again at or below it is
// dropped, with a -1/-1 receipt, and what is above is stored.
func TestResendUnderTheSameNameIsDropped(t *testing.T) {
	b := brokertest.Start(t)
	topic := b.Topic(t, "events.v1")
	c := newClient(t, b.ServiceURL, pulsarsend.Options{})
	first := createProducer(t, c, topic, "relay.dedup")
	if got := first.LastSequenceID(); got != -1 {
		t.Errorf("new name: last sequence id %d, want -1", got)
	}
	var results []<-chan result
	for seq := int64(1); seq <= 3; seq++ {
		results = append(results, send(t, first, seq*10, pulsar.ProducerMessage{Payload: []byte("m"), Key: "k"}))
	}
	for i, ch := range results {
		if r := await(t, ch); r.err != nil || r.receipt.Duplicate() || r.receipt.SequenceID != uint64(i+1)*10 {
			t.Fatalf("send %d: %+v, %v", i, r.receipt, r.err)
		}
	}
	first.Close()

	again := createProducer(t, c, topic, "relay.dedup")
	if got := again.LastSequenceID(); got != 30 {
		t.Fatalf("after 10, 20, 30: last sequence id %d, want 30", got)
	}
	dup := send(t, again, 20, pulsar.ProducerMessage{Payload: []byte("m"), Key: "k"})
	dup30 := send(t, again, 30, pulsar.ProducerMessage{Payload: []byte("m"), Key: "k"})
	next := send(t, again, 40, pulsar.ProducerMessage{Payload: []byte("m"), Key: "k"})
	for _, ch := range []<-chan result{dup, dup30} {
		if r := await(t, ch); r.err != nil || !r.receipt.Duplicate() {
			t.Errorf("re-sent: %+v, %v; want a duplicate's receipt", r.receipt, r.err)
		}
	}
	if r := await(t, next); r.err != nil || r.receipt.Duplicate() {
		t.Errorf("new: %+v, %v; want a stored message's receipt", r.receipt, r.err)
	}
	if err := again.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSendErrorFailsThePendingSends: the broker refuses a message whose
// checksum is wrong with SEND_ERROR; the producer fails, with every send
// pending, and refuses new ones.
func TestSendErrorFailsThePendingSends(t *testing.T) {
	b := brokertest.Start(t)
	c := newClient(t, b.ServiceURL, pulsarsend.Options{})
	p := createProducer(t, c, b.Topic(t, "events.v1"), "relay.senderror")
	pulsarsend.CorruptChecksums(p)
	var results []<-chan result
	for seq := int64(1); seq <= 5; seq++ {
		results = append(results, send(t, p, seq, pulsar.ProducerMessage{Payload: []byte("m")}))
	}
	for _, ch := range results {
		if r := await(t, ch); !errors.Is(r.err, pulsarsend.ErrSendRefused) {
			t.Errorf("send %d: %v, want ErrSendRefused", r.receipt.SequenceID, r.err)
		}
	}
	<-p.Done()
	seq := int64(6)
	if err := p.Send(&pulsar.ProducerMessage{Payload: []byte("m"), SequenceID: &seq}, func(pulsarsend.Receipt, error) {}); !errors.Is(err, pulsarsend.ErrSendRefused) {
		t.Errorf("Send after the failure: %v, want the producer's error", err)
	}
	// The client is still usable: another producer on the same connection.
	other := createProducer(t, c, b.Topic(t, "other.v1"), "relay.other")
	if r := await(t, send(t, other, 1, pulsar.ProducerMessage{Payload: []byte("m")})); r.err != nil {
		t.Errorf("another producer: %v", r.err)
	}
}

// TestConnectionLossFailsThePendingSends: receipts are lost (the proxy drops
// replies), then the connection is reset: every pending send fails with
// ErrConnection, as does every producer on it; nothing reconnects.
func TestConnectionLossFailsThePendingSends(t *testing.T) {
	b := brokertest.Start(t)
	proxy := faultproxy.NewPulsar(t, strings.TrimPrefix(b.ServiceURL, "pulsar://"))
	c := newClient(t, "pulsar://"+proxy.Addr(), pulsarsend.Options{})
	p := createProducer(t, c, b.Topic(t, "events.v1"), "relay.drop")
	q := createProducer(t, c, b.Topic(t, "idle.v1"), "relay.idle")
	if err := proxy.SetMode(faultproxy.DropReplies); err != nil {
		t.Fatal(err)
	}
	var results []<-chan result
	for seq := int64(1); seq <= 5; seq++ {
		results = append(results, send(t, p, seq, pulsar.ProducerMessage{Payload: []byte("m")}))
	}
	time.Sleep(200 * time.Millisecond)
	for _, ch := range results {
		select {
		case r := <-ch:
			t.Fatalf("a result while replies are dropped: %+v", r)
		default:
		}
	}
	proxy.ResetAll()
	for _, ch := range results {
		if r := await(t, ch); !errors.Is(r.err, pulsarsend.ErrConnection) {
			t.Errorf("send %d: %v, want ErrConnection", r.receipt.SequenceID, r.err)
		}
	}
	for _, prod := range []*pulsarsend.Producer{p, q} {
		<-prod.Done()
		if !errors.Is(prod.Err(), pulsarsend.ErrConnection) {
			t.Errorf("producer %s: %v, want ErrConnection", prod.Name(), prod.Err())
		}
	}
}

// TestSilentBrokerFailsTheConnection: with replies dropped and sends
// pending, the connection fails after the receipt timeout (or the
// keep-alive, whichever is shorter), without any reset.
func TestSilentBrokerFailsTheConnection(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts pulsarsend.Options
		want string
	}{
		{"keep-alive", pulsarsend.Options{KeepAlive: time.Second, ReceiptTimeout: time.Minute}, "nothing from the broker"},
		{"receipt timeout", pulsarsend.Options{KeepAlive: time.Minute, ReceiptTimeout: time.Second}, "no receipt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := brokertest.Start(t)
			proxy := faultproxy.NewPulsar(t, strings.TrimPrefix(b.ServiceURL, "pulsar://"))
			c := newClient(t, "pulsar://"+proxy.Addr(), tt.opts)
			p := createProducer(t, c, b.Topic(t, "events.v1"), "relay.silent")
			if err := proxy.SetMode(faultproxy.DropReplies); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r := await(t, send(t, p, 1, pulsar.ProducerMessage{Payload: []byte("m")}))
			if !errors.Is(r.err, pulsarsend.ErrConnection) || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("send: %v, want ErrConnection saying %q", r.err, tt.want)
			}
			if d := time.Since(start); d < time.Second || d > 5*time.Second {
				t.Errorf("failed after %s, bound 1s", d)
			}
		})
	}
}

// TestCloseProducerFromTheBrokerFailsTheProducer: unloading the topic makes
// the broker close its producers; ours fails for good, and says so.
func TestCloseProducerFromTheBrokerFailsTheProducer(t *testing.T) {
	b := brokertest.Start(t)
	topic := b.Topic(t, "events.v1")
	c := newClient(t, b.ServiceURL, pulsarsend.Options{})
	p := createProducer(t, c, topic, "relay.unload")
	if r := await(t, send(t, p, 1, pulsar.ProducerMessage{Payload: []byte("m")})); r.err != nil {
		t.Fatal(r.err)
	}
	req, err := http.NewRequest(http.MethodPut, b.AdminURL+"/admin/v2/persistent/"+strings.TrimPrefix(topic, "persistent://")+"/unload", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("unload: %s", resp.Status)
	}
	select {
	case <-p.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the producer did not fail")
	}
	if !errors.Is(p.Err(), pulsarsend.ErrClosedByBroker) {
		t.Errorf("producer error %v, want ErrClosedByBroker", p.Err())
	}
	seq := int64(2)
	if err := p.Send(&pulsar.ProducerMessage{Payload: []byte("m"), SequenceID: &seq}, func(pulsarsend.Receipt, error) {}); !errors.Is(err, pulsarsend.ErrClosedByBroker) {
		t.Errorf("Send after the close: %v", err)
	}
}

// TestOneConnectionPerBroker: producers of one client on one broker share a
// connection (the lookups have one of their own to the proxy), and a burst of sends on several producers is receipted in
// order per producer.
func TestOneConnectionPerBroker(t *testing.T) {
	b := brokertest.Start(t)
	proxy := faultproxy.NewPulsar(t, strings.TrimPrefix(b.ServiceURL, "pulsar://"))
	c := newClient(t, "pulsar://"+proxy.Addr(), pulsarsend.Options{})
	ns := b.Namespace(t)
	var mu sync.Mutex
	var producers []*pulsarsend.Producer
	for _, name := range []string{"a", "b", "c"} {
		producers = append(producers, createProducer(t, c, "persistent://"+ns+"/"+name, "relay."+name))
	}
	// The proxy answers lookups with proxy_through_service_url: one
	// connection for lookups, one through it to the broker.
	if n := proxy.Stats().Accepted; n != 2 {
		t.Errorf("%d connections for three producers on one broker, want 2", n)
	}
	const n = 2000
	last := map[string]uint64{}
	var wg sync.WaitGroup
	for _, p := range producers {
		wg.Add(n)
		for seq := int64(1); seq <= n; seq++ {
			err := p.Send(&pulsar.ProducerMessage{Payload: []byte("m"), SequenceID: new(seq)}, func(r pulsarsend.Receipt, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil || r.SequenceID != last[p.Name()]+1 {
					t.Errorf("%s: receipt %+v after %d, %v", p.Name(), r, last[p.Name()], err)
				}
				last[p.Name()] = r.SequenceID
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
}
