// Package brokertest gives every test that talks to a broker its broker, with
// one switch for the whole test run: by default each test gets an embedded
// broker of its own (broker) on loopback ports; with
// ALPES_PULSAR_URL and ALPES_PULSAR_ADMIN_URL set, every test talks to that
// real Apache Pulsar instead (`make test-pulsar` starts one for the whole
// pass). The code under test is the same either way: only the URLs differ.
//
// On a shared real Pulsar tests isolate themselves by name: Namespace, Topic
// and Tenant give each test names nobody else uses, so packages can run in
// parallel against one broker. It is for tests only.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/internal/pulsaradmin"
	"github.com/alpes/alpes/internal/pulsarslog"
)

// The switch: both set means every test runs against that real Pulsar.
const (
	URLEnv      = "ALPES_PULSAR_URL"
	AdminURLEnv = "ALPES_PULSAR_ADMIN_URL"
)

// Broker is where a test's messages go. Its fields are for the test to use.
type Broker struct {
	ServiceURL string // pulsar://host:port
	AdminURL   string // http://host:port
	// Embedded is the test's own embedded broker; nil on real Pulsar.
	Embedded *broker.Broker
}

// Real reports whether this run's tests talk to a real Pulsar. It fails the
// run when only one of the two variables is set: half a switch is a mistake,
// not a reason to fall back to the embedded broker.
func Real() bool {
	url, admin := os.Getenv(URLEnv), os.Getenv(AdminURLEnv)
	if (url == "") != (admin == "") {
		panic(fmt.Sprintf("brokertest: set both %s and %s, or neither (got %q and %q)", URLEnv, AdminURLEnv, url, admin))
	}
	return url != ""
}

// Start returns the broker the test talks to: the real Pulsar of the
// switch, or a new embedded broker (default configuration, loopback ports)
// that is closed when the test ends.
func Start(t testing.TB) *Broker {
	t.Helper()
	if Real() {
		return &Broker{ServiceURL: os.Getenv(URLEnv), AdminURL: os.Getenv(AdminURLEnv)}
	}
	return StartEmbedded(t, EmbeddedConfig())
}

// EmbeddedConfig is the embedded broker's default configuration on free
// loopback ports, for tests to adjust before StartEmbedded.
func EmbeddedConfig() broker.Config {
	cfg := broker.DefaultConfig()
	cfg.ServiceAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// StartEmbedded starts an embedded broker configured by cfg, closed when the
// test ends. It is for tests that must control the broker process itself
// (restart it, crash it, configure it); on a real-Pulsar run they skip,
// since the shared Pulsar is nobody's to restart. They still run in every
// embedded pass.
func StartEmbedded(t testing.TB, cfg broker.Config) *Broker {
	t.Helper()
	SkipOnReal(t, "needs control of the broker process")
	// Not t.Context(): it ends before cleanups run, and clients must close
	// while the broker is still up.
	b, err := broker.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &Broker{ServiceURL: b.ServiceURL(), AdminURL: b.AdminURL(), Embedded: b}
}

// SkipOnReal skips the test on a real-Pulsar run, saying why.
func SkipOnReal(t testing.TB, why string) {
	t.Helper()
	if Real() {
		t.Skipf("embedded broker only: %s", why)
	}
}

// Admin returns a client of the broker's admin API.
func (b *Broker) Admin() *pulsaradmin.Client { return pulsaradmin.New(b.AdminURL, "") }

// TestTenant is the tenant of the namespaces Namespace creates.
const TestTenant = "alpes-test"

// Namespace creates a namespace nobody else uses, with deduplication on
// (as alpes runs its namespaces), and returns it as tenant/name.
func (b *Broker) Namespace(t testing.TB) string {
	t.Helper()
	ns := TestTenant + "/" + UniqueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Admin().EnsureNamespace(ctx, ns, true); err != nil {
		t.Fatal(err)
	}
	return ns
}

// Topic returns a persistent topic called name in a fresh namespace of the
// test's own (see Namespace).
func (b *Broker) Topic(t testing.TB, name string) string {
	t.Helper()
	return "persistent://" + b.Namespace(t) + "/" + name
}

// Tenant creates a tenant nobody else uses holding the given namespaces,
// each with deduplication on, and returns its name: the world of a service
// whose topics are named by tenant (persistent://TENANT/orders/...).
func (b *Broker) Tenant(t testing.TB, namespaces ...string) string {
	t.Helper()
	tenant := "t-" + UniqueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range namespaces {
		if err := b.Admin().EnsureNamespace(ctx, tenant+"/"+ns, true); err != nil {
			t.Fatal(err)
		}
	}
	return tenant
}

// Client returns a client of the broker that logs nothing, closed when the
// test ends.
func (b *Broker) Client(t testing.TB) pulsar.Client {
	t.Helper()
	return NewClient(t, b.ServiceURL)
}

// ClientWithMetrics is Client with the client's own metrics
// (pulsar_client_*) registered in reg rather than in the global registry,
// as a process registers them in its own.
func (b *Broker) ClientWithMetrics(t testing.TB, reg prometheus.Registerer) pulsar.Client {
	t.Helper()
	return newClient(t, b.ServiceURL, reg)
}

// NewClient returns a client of the broker at serviceURL (pulsar://host:port)
// that logs nothing, closed when the test ends: for a test that reaches the
// broker by another way than Broker.ServiceURL, such as a fault proxy.
func NewClient(t testing.TB, serviceURL string) pulsar.Client {
	t.Helper()
	return newClient(t, serviceURL, nil)
}

// newClient is NewClient registering its metrics in reg (nil: pulsar-client-go's default, the global registry).
func newClient(t testing.TB, serviceURL string, reg prometheus.Registerer) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:               serviceURL,
		Logger:            pulsarslog.New(slog.New(slog.DiscardHandler)),
		OperationTimeout:  30 * time.Second,
		ConnectionTimeout: 10 * time.Second,
		MetricsRegisterer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// UniqueName is a name no other test of any package uses: the test's name,
// made safe for Pulsar and shortened, and random hex.
func UniqueName(t testing.TB) string {
	name := strings.Trim(unsafeChars.ReplaceAllString(t.Name(), "-"), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	b := make([]byte, 5)
	rand.Read(b)
	return strings.ToLower(strings.TrimLeft(name, "-")) + "-" + hex.EncodeToString(b)
}

// Consume runs handle on every message consumer receives, each acknowledged
// first, in a goroutine of its own until the test ends; then it closes
// consumer. handle runs on that goroutine: what it records, it must guard
// for the test to read.
func Consume(t testing.TB, consumer pulsar.Consumer, handle func(pulsar.Message)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := consumer.Receive(ctx)
			if err != nil {
				return
			}
			consumer.Ack(msg)
			handle(msg)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		consumer.Close()
	})
}
