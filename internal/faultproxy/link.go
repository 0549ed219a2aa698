package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	chunkSize      = 32 << 10 // bytes read at once
	chunksInFlight = 4        // chunks a direction may hold between read and write
)

// direction says which way a pipe carries bytes.
type direction uint8

const (
	toServer direction = iota
	toClient
)

// chunk is one read from a peer: n bytes of buf, or the end of the stream.
type chunk struct {
	buf []byte
	n   int
	at  time.Time // when it was read; Latency counts from here
	eof bool
}

// action is what a pipe does with a chunk once the mode allows it.
type action uint8

const (
	actWrite action = iota
	actDrop
	actStop
)

// link is one proxied connection: the accepted client conn and the conn the
// proxy dialled to the target, with two pipes (a reader and a writer
// goroutine for each direction). A link ends exactly once, in shutdown.
type link struct {
	p      *Proxy
	client *net.TCPConn
	ctx    context.Context // cancels the dial when the link ends first
	cancel context.CancelFunc
	done   chan struct{} // closed by shutdown
	eofs   atomic.Int32  // directions that have delivered their end of stream

	mu     sync.Mutex
	server *net.TCPConn // nil until dialled
	down   bool
	reset  bool // how the link ended: RST rather than FIN
}

func newLink(p *Proxy, client *net.TCPConn) *link {
	ctx, cancel := context.WithCancel(context.Background())
	return &link{p: p, client: client, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// run dials the target, pipes both ways until the link ends, and unregisters
// it. It runs in its own goroutine, counted in p.wg.
func (l *link) run() {
	defer l.p.wg.Done()
	defer l.p.remove(l)
	var d net.Dialer
	c, err := d.DialContext(l.ctx, "tcp", l.p.target)
	if err != nil {
		l.shutdown(true)
		return
	}
	server := c.(*net.TCPConn)
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		closeConn(server, l.reset)
		return
	}
	l.server = server
	l.mu.Unlock()

	var fromServer io.Reader = server
	if l.p.pulsar {
		fromServer = newLookupRewriter(server)
	}
	var wg sync.WaitGroup
	l.pipe(&wg, l.client, server, toServer)
	l.pipe(&wg, fromServer, l.client, toClient)
	wg.Wait()
	l.shutdown(false) // no-op: the pipes only end once the link is down
}

// shutdown ends the link once: it closes both conns, with RST when reset is
// true, and releases every goroutine waiting on the link. It reports whether
// this call ended the link (false when it was already down).
func (l *link) shutdown(reset bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return false
	}
	l.down, l.reset = true, reset
	l.cancel()
	close(l.done)
	closeConn(l.client, reset)
	if l.server != nil {
		closeConn(l.server, reset)
	}
	return true
}

// closeConn closes c, with RST instead of FIN when reset is true.
func closeConn(c *net.TCPConn, reset bool) {
	if reset {
		_ = c.SetLinger(0)
	}
	_ = c.Close()
}

// pipe starts the reader and writer goroutines that carry bytes from src to
// dst. They share a fixed set of chunksInFlight buffers, allocated on first
// use: that bounds what a direction holds, and when all are held (Blackhole,
// Latency, a slow dst) the reader stops reading.
func (l *link) pipe(wg *sync.WaitGroup, src io.Reader, dst *net.TCPConn, dir direction) {
	queue := make(chan chunk, chunksInFlight)
	free := make(chan []byte, chunksInFlight)
	for range chunksInFlight {
		free <- nil
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		l.read(src, queue, free)
	}()
	go func() {
		defer wg.Done()
		l.write(dst, dir, queue, free)
	}()
}

// read moves chunks from src to queue, then an end-of-stream chunk on EOF. A
// read error other than EOF (a reset by the peer, or our own close) ends the
// link with a reset.
func (l *link) read(src io.Reader, queue chan<- chunk, free chan []byte) {
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-l.done:
			return
		}
		if buf == nil {
			buf = make([]byte, chunkSize)
		}
		n, err := src.Read(buf)
		if n == 0 {
			free <- buf // never blocks: it is the token just taken
		} else {
			select {
			case queue <- chunk{buf: buf, n: n, at: time.Now()}:
			case <-l.done:
				return
			}
		}
		if errors.Is(err, io.EOF) {
			select {
			case queue <- chunk{at: time.Now(), eof: true}:
			case <-l.done:
			}
			return
		}
		if err != nil {
			l.shutdown(true)
			return
		}
	}
}

// write takes chunks from queue, waits until the mode lets each one through,
// and writes it to dst (or drops it). At end of stream it half-closes dst; the
// second direction to do so ends the link.
func (l *link) write(dst *net.TCPConn, dir direction, queue <-chan chunk, free chan<- []byte) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var c chunk
		select {
		case c = <-queue:
		case <-l.done:
			return
		}
		switch l.await(c, dir, timer) {
		case actStop:
			return
		case actDrop:
			l.p.dropped.Add(int64(c.n))
			free <- c.buf
			continue
		}
		if c.eof {
			if err := dst.CloseWrite(); err != nil {
				l.shutdown(true)
			} else if l.eofs.Add(1) == 2 {
				l.shutdown(false)
			}
			return
		}
		n, err := dst.Write(c.buf[:c.n])
		if dir == toServer {
			l.p.toServer.Add(int64(n))
		} else {
			l.p.toClient.Add(int64(n))
		}
		free <- c.buf
		if err != nil {
			l.shutdown(true)
			return
		}
	}
}

// await blocks until the current mode lets c through, re-reading the mode
// whenever it changes, and says what to do with c.
func (l *link) await(c chunk, dir direction, timer *time.Timer) action {
	delayed, held := false, false
	for {
		m, changed := l.p.connState()
		var due <-chan time.Time
		switch m.kind {
		case kindPass:
			return actWrite
		case kindLatency:
			wait := time.Until(c.at.Add(m.delay))
			if wait <= 0 {
				return actWrite
			}
			if !delayed {
				delayed = true
				l.p.delayed.Add(1)
			}
			timer.Reset(wait)
			due = timer.C
		case kindDropReplies:
			if dir == toClient && !c.eof {
				return actDrop
			}
			return actWrite
		case kindBlackhole:
			// Hold c until the mode changes.
			if !held {
				held = true
				l.p.held.Add(1)
			}
		default:
			// Reset: the link is being torn down; wait for that.
		}
		select {
		case <-due:
			return actWrite
		case <-changed:
		case <-l.done:
			return actStop
		}
	}
}
