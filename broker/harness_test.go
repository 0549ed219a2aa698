package broker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/broker/brokertest"
)

// The conformance suite drives the broker with the real pulsar-client-go.
// Its broker comes from broker/brokertest, like every other package's:
// with ALPES_PULSAR_URL and ALPES_PULSAR_ADMIN_URL set, the same tests run
// against that real Pulsar instead, which is how we check that the embedded
// broker behaves like the real thing. Tests that need to control
// the broker process itself (restart it, crash it, configure it) skip
// there; what Pulsar lets an admin change at runtime (namespaces and their
// policies, topic unloads) the tests do through the admin API, on both.

// receiveTimeout bounds every wait on the broker in the suite.
const receiveTimeout = 10 * time.Second

// env is where one test's broker is.
type env struct {
	serviceURL string
	adminURL   string
	broker     *broker.Broker // nil against a real Pulsar
}

// newEnv gives the test its broker (brokertest.Start): an embedded one of
// its own on loopback ports, or the real Pulsar of the run.
func newEnv(t *testing.T) *env {
	t.Helper()
	b := brokertest.Start(t)
	return &env{serviceURL: b.ServiceURL, adminURL: b.AdminURL, broker: b.Embedded}
}

func testConfig() broker.Config { return brokertest.EmbeddedConfig() }

// skipOnRealPulsar skips a test that must control the broker process.
func skipOnRealPulsar(t *testing.T) {
	t.Helper()
	brokertest.SkipOnReal(t, "needs control of the broker process")
}

// startBroker starts an embedded broker configured by cfg; it skips
// against a real Pulsar.
func startBroker(t *testing.T, cfg broker.Config) *env {
	t.Helper()
	b := brokertest.StartEmbedded(t, cfg)
	return &env{serviceURL: b.ServiceURL, adminURL: b.AdminURL, broker: b.Embedded}
}

// startBench starts an embedded broker for a benchmark.
func startBench(b *testing.B, cfg broker.Config) *env {
	b.Helper()
	br, err := broker.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	return &env{serviceURL: br.ServiceURL(), adminURL: br.AdminURL(), broker: br}
}

var quietLogger = pulsarlog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))

// client returns a pulsar client for the environment, closed at cleanup.
func (e *env) client(t *testing.T, opts ...func(*pulsar.ClientOptions)) pulsar.Client {
	t.Helper()
	o := pulsar.ClientOptions{
		URL:               e.serviceURL,
		Logger:            quietLogger,
		OperationTimeout:  receiveTimeout,
		ConnectionTimeout: receiveTimeout,
	}
	for _, f := range opts {
		f(&o)
	}
	c, err := pulsar.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// topic returns a fresh, fully qualified topic name for the test, in
// public/default.
func topic(t *testing.T) string { return topicIn(t, "public/default") }

// topicIn returns a fresh, fully qualified topic name in namespace ns
// ("tenant/ns").
func topicIn(t *testing.T, ns string) string {
	return "persistent://" + ns + "/" + brokertest.UniqueName(t)
}

func producer(t *testing.T, c pulsar.Client, opts pulsar.ProducerOptions) pulsar.Producer {
	t.Helper()
	p, err := c.CreateProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func subscribe(t *testing.T, c pulsar.Client, opts pulsar.ConsumerOptions) pulsar.Consumer {
	t.Helper()
	cs, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.Close)
	return cs
}

// send publishes payloads synchronously and returns their ids.
func send(t *testing.T, p pulsar.Producer, msgs ...*pulsar.ProducerMessage) []pulsar.MessageID {
	t.Helper()
	ids := make([]pulsar.MessageID, 0, len(msgs))
	for _, m := range msgs {
		ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
		id, err := p.Send(ctx, m)
		cancel()
		if err != nil {
			t.Fatalf("sending %q: %v", m.Payload, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sendKeyed sends, for each i from from to to-1, one message per key k0 …
// k<keys-1> with payload "<key>-<i>", asynchronously, then flushes. A failed
// send fails the test.
func sendKeyed(ctx context.Context, t *testing.T, p pulsar.Producer, keys, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		for k := range keys {
			key := "k" + itoa(k)
			p.SendAsync(ctx, &pulsar.ProducerMessage{Key: key, Payload: []byte(key + "-" + itoa(i))},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						t.Errorf("send: %v", err)
					}
				})
		}
	}
	if err := p.FlushWithCtx(ctx); err != nil {
		t.Fatal(err)
	}
}

func payloads(prefix string, n int) []*pulsar.ProducerMessage {
	msgs := make([]*pulsar.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &pulsar.ProducerMessage{Payload: []byte(prefix + itoa(i))}
	}
	return msgs
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// receive waits for the next message, failing the test after receiveTimeout.
func receive(t *testing.T, cs pulsar.Consumer) pulsar.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	m, err := cs.Receive(ctx)
	if err != nil {
		t.Fatalf("receiving: %v", err)
	}
	return m
}

// expectNothing asserts that no message arrives within a short window.
// Absence cannot be proven by waiting; the window only catches regressions.
func expectNothing(t *testing.T, cs pulsar.Consumer, window time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), window)
	defer cancel()
	if m, err := cs.Receive(ctx); err == nil {
		t.Fatalf("unexpected message %q (id %v)", m.Payload(), m.ID())
	}
}

// receiveWithin receives with a short deadline, for draining a consumer
// whose expected total is checked by the caller.
func receiveWithin(t *testing.T, cs pulsar.Consumer) (pulsar.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	m, err := cs.Receive(ctx)
	if err == nil {
		cs.Ack(m)
	}
	return m, err
}

// waitFor polls cond until it holds, failing the test after receiveTimeout.
// For states only observable by asking (admin stats), not for ordering.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(receiveTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
