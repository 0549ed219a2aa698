package broker_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker"
)

// TestAdvertisedAddrRoutesClientsThroughIt: a broker advertising another
// address (a forwarder in front of it, as a proxy would be) sends clients
// there in its lookup answers, so a client given the broker's own address
// still produces and consumes through the forwarder.
func TestAdvertisedAddrRoutesClientsThroughIt(t *testing.T) {
	fwd, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AdvertisedAddr = fwd.Addr().String()
	e := startBroker(t, cfg)
	if want := "pulsar://" + fwd.Addr().String(); e.serviceURL != want {
		t.Fatalf("ServiceURL %s, want %s", e.serviceURL, want)
	}
	forwarded := forward(t, fwd, e.broker.Addr().String())

	direct := "pulsar://" + e.broker.Addr().String()
	c := e.client(t, func(o *pulsar.ClientOptions) { o.URL = direct })
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("via-", 3)...)
	for i := range 3 {
		if m := receive(t, cs); string(m.Payload()) != "via-"+itoa(i) {
			t.Fatalf("message %d: %q", i, m.Payload())
		}
	}
	if n := forwarded.Load(); n == 0 {
		t.Error("no connection went through the advertised address")
	}
}

// forward accepts connections on ln and pipes each to target until the test
// ends; it returns the count of connections accepted.
func forward(t *testing.T, ln net.Listener, target string) *atomic.Int64 {
	var accepted atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, s)
			mu.Unlock()
			wg.Go(func() { io.Copy(s, c); s.Close() })
			wg.Go(func() { io.Copy(c, s); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &accepted
}

func TestAdvertisedAddrIsValidated(t *testing.T) {
	for _, addr := range []string{"localhost", ":6650", "127.0.0.1:0", "127.0.0.1:http", "127.0.0.1:70000"} {
		cfg := testConfig()
		cfg.AdvertisedAddr = addr
		b, err := broker.Start(context.Background(), cfg)
		if err == nil {
			b.Close()
			t.Errorf("advertised address %q accepted", addr)
			continue
		}
		if !strings.Contains(err.Error(), "advertised address") {
			t.Errorf("advertised address %q: error %q does not say what is wrong", addr, err)
		}
	}
}
