package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPassForwardsBothWays(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())

	roundTrip(t, c, "hello")

	waitFor(t, "counters", func() bool {
		s := p.Stats()
		return s.Accepted == 1 && s.Active == 1 && s.ToServer == 5 && s.ToClient == 5 && s.Dropped == 0
	})
}

func TestPassForwardsEndOfStreamAndEndsLink(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())

	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: many chunks
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(patience))
	got, err := io.ReadAll(c) // ends when the echo server's FIN comes through
	if err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo differs: got %d bytes, want %d", len(got), len(want))
	}
	waitFor(t, "the link to end after both FINs", func() bool { return p.Stats().Active == 0 })
}

func TestLatencyDelaysEachDirection(t *testing.T) {
	const d = 50 * time.Millisecond
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())
	roundTrip(t, c, "warm")
	setMode(t, p, Latency(d))

	start := time.Now()
	for _, msg := range []string{"one ", "two ", "three "} { // order is preserved
		send(t, c, msg)
	}
	expect(t, c, "one two three ")
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip took %v, want at least %v (d each way)", rtt, 2*d)
	}
	if got := p.Mode(); got != Latency(d) {
		t.Fatalf("Mode() = %v, want %v", got, Latency(d))
	}
}

func TestBlackholeHoldsDataAndKeepsConnectionsOpen(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	old := dial(t, p.Addr())
	roundTrip(t, old, "before")
	setMode(t, p, Blackhole)

	send(t, old, "held")
	expectSilence(t, old)
	fresh := dial(t, p.Addr()) // new connections are accepted, then silent
	send(t, fresh, "also held")
	expectSilence(t, fresh)
	waitFor(t, "both connections open", func() bool { return p.Stats().Active == 2 })
	if got := srv.received.Load(); got != int64(len("before")) {
		t.Fatalf("server received %d bytes during blackhole, want %d", got, len("before"))
	}

	setMode(t, p, Pass) // the partition heals: held data is delivered
	expect(t, old, "held")
	expect(t, fresh, "also held")
}

func TestBlackholeBoundsMemoryByBackpressure(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	setMode(t, p, Blackhole)
	c := dial(t, p.Addr())

	// Writing must eventually block: the proxy stops reading once its few
	// chunks are held, and only the kernel's socket buffers fill.
	const limit = 256 << 20 // far above loopback socket buffers (tcp_rmem max is often 32 MiB)
	block := make([]byte, 1<<20)
	written := 0
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	var err error
	for written < limit && err == nil {
		var n int
		n, err = c.Write(block)
		written += n
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("wrote %d bytes into a blackhole without blocking (err %v)", written, err)
	}
	t.Logf("writes blocked after %d KiB", written>>10)
	if got := srv.received.Load(); got != 0 {
		t.Fatalf("server received %d bytes through a blackhole", got)
	}
}

func TestDropRepliesDeliversRequestsAndLosesReplies(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())
	setMode(t, p, DropReplies)

	send(t, c, "order-1")
	waitFor(t, "the server to receive the request", func() bool { return srv.received.Load() == 7 })
	waitFor(t, "the reply to be dropped", func() bool { return p.Stats().Dropped == 7 })
	expectSilence(t, c)

	setMode(t, p, Pass) // the lost reply stays lost
	roundTrip(t, c, "order-2")
}

func TestDropRepliesDiscardsWithoutBlockingTheServer(t *testing.T) {
	const size = 8 << 20
	flooded := make(chan error, 1)
	srv := startServer(t, func(s *server, c *net.TCPConn) {
		if _, err := c.Read(make([]byte, 1)); err != nil {
			flooded <- err
			return
		}
		_, err := c.Write(make([]byte, size))
		flooded <- err
		_, _ = io.Copy(io.Discard, c) // stay open: a close would be forwarded
	})
	p := New(t, srv.addr)
	setMode(t, p, DropReplies)
	c := dial(t, p.Addr())

	send(t, c, "!")
	select {
	case err := <-flooded:
		if err != nil {
			t.Fatalf("server writing %d bytes: %v", size, err)
		}
	case <-time.After(patience):
		t.Fatal("server blocked writing replies that the proxy should discard")
	}
	waitFor(t, "all replies dropped", func() bool { return p.Stats().Dropped == size })
	expectSilence(t, c)
}

func TestResetResetsOpenAndNewConnections(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")

	setMode(t, p, Reset)
	expectReset(t, a)
	expectReset(t, b)
	expectDialReset(t, p.Addr())

	setMode(t, p, Pass)
	roundTrip(t, dial(t, p.Addr()), "after")
}

func TestResetAllKeepsTheMode(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	setMode(t, p, Latency(time.Millisecond))
	c := dial(t, p.Addr())
	roundTrip(t, c, "x")

	p.ResetAll()
	expectReset(t, c)
	if got := p.Mode(); got != Latency(time.Millisecond) {
		t.Fatalf("Mode() = %v after ResetAll, want unchanged", got)
	}
	roundTrip(t, dial(t, p.Addr()), "new connections still work")
}

func TestDialFailureResetsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	p := New(t, dead)

	expectDialReset(t, p.Addr())
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{
		{}:                             "pass",
		Pass:                           "pass",
		Latency(0):                     "pass",
		Latency(20 * time.Millisecond): "latency(20ms)",
		Blackhole:                      "blackhole",
		DropReplies:                    "drop-replies",
		Reset:                          "reset",
		Refuse:                         "refuse",
	} {
		if got := m.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", m, got, want)
		}
	}
	if !strings.HasPrefix(Mode{kind: 99}.String(), "mode(") {
		t.Error("unknown kinds should still print")
	}
}
