package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRefuseThenPassReopensTheSameAddress(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	addr := p.Addr()
	open := dial(t, addr)
	roundTrip(t, open, "before")

	setMode(t, p, Refuse)
	if c, err := net.DialTimeout("tcp", addr, patience); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("dialing a refusing proxy: %v; want ECONNREFUSED", err)
	}
	roundTrip(t, open, "open connections keep the previous mode (pass)")

	setMode(t, p, Pass)
	if p.Addr() != addr {
		t.Fatalf("address changed from %s to %s", addr, p.Addr())
	}
	roundTrip(t, dial(t, addr), "after")
	if got := p.Stats().Accepted; got != 2 {
		t.Fatalf("accepted %d connections, want 2", got)
	}
}

func TestRefuseKeepsOpenConnectionsBlackholed(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())
	roundTrip(t, c, "x")

	setMode(t, p, Blackhole)
	setMode(t, p, Refuse)
	send(t, c, "held")
	expectSilence(t, c)

	setMode(t, p, Pass)
	expect(t, c, "held")
}

func TestSwitchingModesMidConnection(t *testing.T) {
	const d = 30 * time.Millisecond
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())

	roundTrip(t, c, "pass ")

	setMode(t, p, Latency(d))
	start := time.Now()
	roundTrip(t, c, "slow ")
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("latency round trip took %v, want at least %v", rtt, 2*d)
	}

	setMode(t, p, DropReplies)
	send(t, c, "lost ")
	waitFor(t, "the reply to be dropped", func() bool { return p.Stats().Dropped == 5 })
	expectSilence(t, c)

	setMode(t, p, Blackhole)
	send(t, c, "held ")
	expectSilence(t, c)

	// Leaving the blackhole delivers the held bytes, under the new mode.
	setMode(t, p, Latency(d))
	expect(t, c, "held ")

	setMode(t, p, Pass)
	roundTrip(t, c, "pass again")
	if got := srv.received.Load(); got != int64(len("pass slow lost held pass again")) {
		t.Fatalf("server received %d bytes", got)
	}
}

func TestCloseEndsEverythingWithoutLeaks(t *testing.T) {
	srv := startEcho(t)
	p, err := Start(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	passing := dial(t, p.Addr())
	roundTrip(t, passing, "x")
	setMode(t, p, Blackhole)
	held := dial(t, p.Addr())
	send(t, held, "held")
	setMode(t, p, Latency(time.Hour))
	send(t, passing, "delayed")
	waitFor(t, "two open connections", func() bool { return p.Stats().Active == 2 })

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectReset(t, passing)
	expectReset(t, held)
	waitFor(t, "the proxy's goroutines to end", func() bool { return proxyGoroutines() == 0 })

	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.SetMode(Pass); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetMode after Close: %v, want ErrClosed", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), patience); err == nil {
		_ = c.Close()
		t.Fatal("a closed proxy accepted a connection")
	}
}

func TestCloseWhileRefusing(t *testing.T) {
	srv := startEcho(t)
	p, err := Start(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	setMode(t, p, Refuse)
	if err := p.Close(); err != nil {
		t.Fatalf("Close while refusing: %v", err)
	}
	waitFor(t, "the proxy's goroutines to end", func() bool { return proxyGoroutines() == 0 })
}

func TestConcurrentTrafficAndModeChanges(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	modes := []Mode{Pass, Latency(time.Millisecond), Blackhole, DropReplies, Pass, Reset, Refuse}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() { // clients: errors are expected, races and hangs are not
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), patience)
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(20 * time.Millisecond))
				_, _ = fmt.Fprintf(c, "client %d message %d", i, j)
				_, _ = c.Read(make([]byte, 64))
				_ = c.Close()
			}
		}()
	}
	for range 5 {
		for _, m := range modes {
			setMode(t, p, m)
			if m != Refuse { // let some connections meet this mode
				seen := p.Stats().Accepted
				waitFor(t, fmt.Sprintf("connections in mode %v", m), func() bool { return p.Stats().Accepted >= seen+2 })
			}
			p.ResetAll()
		}
	}
	close(stop)
	wg.Wait()

	setMode(t, p, Pass)
	roundTrip(t, dial(t, p.Addr()), "still works")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the proxy's goroutines to end", func() bool { return proxyGoroutines() == 0 })
}
