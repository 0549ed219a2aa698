// Package faultproxy is a TCP proxy for tests that injects network faults.
//
// A test starts a Proxy in front of a server on loopback (Postgres, the Pulsar
// broker), points the client at Proxy.Addr instead of the server, and then
// changes the proxy's Mode while traffic flows: added latency, a partition
// (Blackhole), lost replies (DropReplies), connection resets (Reset), refused
// connections (Refuse), and back to Pass. It lets the fault scenarios
// (relay↔broker partition, lost receipts, broker unreachable, Postgres
// connections cut) run on one machine, without Docker or root.
//
// A Proxy is safe for concurrent use: one goroutine may call SetMode while
// others call ResetAll, Stats or Close, and while connections carry data. The
// proxy's memory is bounded per connection whatever the mode.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ErrClosed is returned by SetMode after Close.
var ErrClosed = errors.New("faultproxy: proxy closed")

// Stats are counters for test assertions. Bytes are counted when written to
// the other peer, not when read, so bytes held by Blackhole or Latency are not
// counted yet.
type Stats struct {
	Accepted int64 // connections accepted, including those reset at once
	Active   int   // connections being proxied now (until their goroutines end)
	ToServer int64 // bytes written to the target
	ToClient int64 // bytes written to clients
	Dropped  int64 // server→client bytes discarded by DropReplies
	Delayed  int64 // chunks of bytes Latency held back before forwarding them
	Held     int64 // chunks of bytes Blackhole held (each counted once)
	Resets   int64 // connections the proxy reset by Reset or ResetAll
}

// Proxy forwards every connection accepted on Addr to a target address,
// applying its current Mode. Create one with Start or New; its zero value is
// not usable. All methods are safe for concurrent use. The Proxy owns its
// listener and both ends of every proxied connection; Close releases them all
// and waits for the proxy's goroutines to end.
type Proxy struct {
	target string
	addr   string // fixed by Start, reused when the listener is re-opened
	pulsar bool   // rewrite the target's lookup answers (StartPulsar)

	accepted, toServer, toClient, dropped atomic.Int64
	delayed, held, resets                 atomic.Int64

	wg sync.WaitGroup // accept loops and connections; Add only under mu while !closed

	mu       sync.Mutex
	mode     Mode          // as last set
	connMode Mode          // what open connections do: mode, except that Refuse keeps the previous one
	changed  chan struct{} // closed and replaced whenever connMode may have changed
	ln       net.Listener  // nil while refusing and after Close
	links    map[*link]struct{}
	closed   bool
}

// Start listens on 127.0.0.1 on a free port and forwards every accepted
// connection to target, in mode Pass. The target is dialled once per accepted
// connection; when dialling fails, the client's connection is reset.
func Start(target string) (*Proxy, error) { return start(target, false) }

func start(target string, pulsar bool) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	p := &Proxy{
		target:  target,
		pulsar:  pulsar,
		addr:    ln.Addr().String(),
		changed: make(chan struct{}),
		links:   make(map[*link]struct{}),
	}
	p.mu.Lock()
	p.serveLocked(ln)
	p.mu.Unlock()
	return p, nil
}

// New is Start for tests: it fails t when the proxy cannot start and closes
// the proxy in t.Cleanup.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatalf("starting fault proxy for %s: %v", target, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the address clients should dial, such as "127.0.0.1:41234".
// It does not change for the life of the proxy, even across Refuse.
func (p *Proxy) Addr() string { return p.addr }

// Mode returns the mode last set (Pass after Start).
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches the proxy to m. It takes effect for new connections and for
// open ones, including bytes already read and not yet forwarded; see Mode and
// the mode variables for what each does. Setting the current mode again is
// harmless (setting Reset again resets the connections opened since).
//
// The error is ErrClosed after Close, or the error from re-opening the
// listener when leaving Refuse (the port may have been taken meanwhile); on
// error the mode is unchanged.
func (p *Proxy) SetMode(m Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if m.kind == kindRefuse {
		if p.ln != nil {
			_ = p.ln.Close() // its accept loop ends with net.ErrClosed
			p.ln = nil
		}
		p.mode = m
		return nil
	}
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("re-opening listener on %s: %w", p.addr, err)
		}
		p.serveLocked(ln)
	}
	p.mode, p.connMode = m, m
	if m.kind == kindReset {
		p.resetAllLocked()
	}
	close(p.changed)
	p.changed = make(chan struct{})
	return nil
}

// ResetAll resets every open connection (RST to both peers) without changing
// the mode, so new connections are treated as before.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetAllLocked()
}

func (p *Proxy) resetAllLocked() {
	for l := range p.links {
		if l.shutdown(true) {
			p.resets.Add(1)
		}
	}
}

// Stats returns the proxy's counters. Counters are read one by one, so a
// snapshot taken while traffic flows need not be consistent across fields.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := len(p.links)
	p.mu.Unlock()
	return Stats{
		Accepted: p.accepted.Load(),
		Active:   active,
		ToServer: p.toServer.Load(),
		ToClient: p.toClient.Load(),
		Dropped:  p.dropped.Load(),
		Delayed:  p.delayed.Load(),
		Held:     p.held.Load(),
		Resets:   p.resets.Load(),
	}
}

// Close closes the listener and every open connection (an orderly close, not
// a reset) and waits until all of the proxy's goroutines have ended. It is
// idempotent; later calls wait the same way and return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	var err error
	if !p.closed {
		p.closed = true
		if p.ln != nil {
			err = p.ln.Close()
			p.ln = nil
		}
		for l := range p.links {
			l.shutdown(false)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// serveLocked starts accepting on ln. The caller holds p.mu.
func (p *Proxy) serveLocked(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go p.acceptLoop(ln)
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // e.g. out of file descriptors: back off, then retry
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.accepted.Add(1)
		p.admit(c.(*net.TCPConn))
	}
}

// admit starts proxying c, or resets it when connections are being reset.
func (p *Proxy) admit(c *net.TCPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		_ = c.Close()
	case p.connMode.kind == kindReset:
		closeConn(c, true)
		p.resets.Add(1)
	default:
		l := newLink(p, c)
		p.links[l] = struct{}{}
		p.wg.Add(1)
		go l.run()
	}
}

// connState returns what open connections should do now, and a channel that
// is closed when that may have changed.
func (p *Proxy) connState() (Mode, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connMode, p.changed
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, l)
}
