package bff

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// fatalPoint is where a fatalProxy ends the session that carries an order.
type fatalPoint int32

const (
	// beforeTheOrder: the bff's first message about the order (the Parse of
	// its first INSERT when the statements are prepared, else the Bind of it)
	// is held back, so Postgres never sees it, and the session ends there.
	beforeTheOrder fatalPoint = iota + 1
	// afterTheCommit: Postgres runs the order's batch and commits it (its
	// ReadyForQuery says idle, no error); the proxy withholds that whole
	// answer, and the session ends. Postgres flushes its answer before it
	// can act on a termination, so without the proxy the bff would hear the
	// commit first: the proxy stands for whatever loses the answer and
	// passes on the end of the session (a pooler, a reply lost in flight).
	afterTheCommit
)

// fatalProxy sits between the bff and Postgres. Armed, it ends one session
// at a fatalPoint with a real pg_terminate_backend, which waits until the
// backend has exited, and lets through what Postgres then says: FATAL 57P01
// admin_shutdown, and the end of the connection. It reads just enough of
// the protocol (v3, sslmode=disable) to find message boundaries.
type fatalProxy struct {
	t      testing.TB
	target string
	admin  *pgxpool.Pool // terminates backends
	ln     net.Listener
	armed  atomic.Int32 // a fatalPoint, or 0; disarmed when it fires
	fired  atomic.Bool
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startFatalProxy starts a disarmed fatalProxy in front of target, closed in
// t.Cleanup.
func startFatalProxy(t testing.TB, target string, admin *pgxpool.Pool) *fatalProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fatalProxy{t: t, target: target, admin: admin, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// port is the port the proxy listens on, on 127.0.0.1.
func (p *fatalProxy) port() uint16 { return uint16(p.ln.Addr().(*net.TCPAddr).Port) }

// arm makes the next order's session end at point.
func (p *fatalProxy) arm(point fatalPoint) { p.armed.Store(int32(point)) }

// fire reports whether the proxy is armed at point, and disarms it.
func (p *fatalProxy) fire(point fatalPoint) bool {
	if !p.armed.CompareAndSwap(int32(point), 0) {
		return false
	}
	p.fired.Store(true)
	return true
}

func (p *fatalProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		s := &fatalSession{p: p, client: client, server: server, orderStmts: map[string]bool{}}
		p.wg.Add(2)
		go s.fromClient()
		go s.fromServer()
	}
}

func (p *fatalProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// fatalSession is one proxied connection.
type fatalSession struct {
	p              *fatalProxy
	client, server net.Conn
	pid            atomic.Uint32 // the backend's, from BackendKeyData
	ended          atomic.Bool   // terminated: the client's bytes go nowhere
	holding        atomic.Bool   // the order's batch was sent: hold the answer
	orderStmts     map[string]bool
}

// orderSQL marks the first statement of an order's batch.
var orderSQL = []byte("INSERT INTO order_requests")

// fromClient forwards the client's messages, and ends the session, or
// starts holding the answer, when the order's batch comes.
func (s *fatalSession) fromClient() {
	defer s.p.wg.Done()
	defer s.server.Close()
	r := bufio.NewReader(s.client)
	// The first message, a startup or cancel request, has no type byte.
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 8 || size > 1<<16 {
		return
	}
	first := make([]byte, size)
	copy(first, n[:])
	if _, err := io.ReadFull(r, first[4:]); err != nil {
		return
	}
	if _, err := s.server.Write(first); err != nil {
		return
	}
	for {
		typ, msg, err := readMessage(r)
		if err != nil {
			return
		}
		if s.ended.Load() {
			continue
		}
		if s.aboutTheOrder(typ, msg) {
			if s.p.fire(beforeTheOrder) {
				s.end()
				continue
			}
			if typ == 'B' && fatalPoint(s.p.armed.Load()) == afterTheCommit {
				s.holding.Store(true) // before Postgres can answer
			}
		}
		if _, err := s.server.Write(msg); err != nil {
			return
		}
	}
}

// aboutTheOrder reports whether msg parses the order's first INSERT, or
// binds the statement prepared from it.
func (s *fatalSession) aboutTheOrder(typ byte, msg []byte) bool {
	body := msg[5:]
	switch typ {
	case 'P': // statement name, query, …
		name, rest, _ := bytes.Cut(body, []byte{0})
		if bytes.HasPrefix(rest, orderSQL) {
			s.orderStmts[string(name)] = true
			return true
		}
	case 'B': // portal name, statement name, …
		_, rest, _ := bytes.Cut(body, []byte{0})
		name, _, _ := bytes.Cut(rest, []byte{0})
		return s.orderStmts[string(name)]
	}
	return false
}

// fromServer forwards Postgres's messages; while holding, it keeps them
// until ReadyForQuery and ends the session there if the batch committed.
func (s *fatalSession) fromServer() {
	defer s.p.wg.Done()
	defer s.client.Close()
	r := bufio.NewReader(s.server)
	var held [][]byte
	for {
		typ, msg, err := readMessage(r)
		if err != nil {
			return
		}
		if typ == 'K' { // BackendKeyData: process id, secret key
			s.pid.Store(binary.BigEndian.Uint32(msg[5:9]))
		}
		out := [][]byte{msg}
		if s.holding.Load() {
			held = append(held, msg)
			if typ != 'Z' {
				continue
			}
			s.holding.Store(false)
			out, held = held, nil
			if committed(out) && s.p.fire(afterTheCommit) {
				s.end()
				continue
			}
		}
		for _, m := range out {
			if _, err := s.client.Write(m); err != nil {
				return
			}
		}
	}
}

// committed reports whether answer, up to ReadyForQuery, is that of an
// implicit transaction that committed: no ErrorResponse, and idle after.
func committed(answer [][]byte) bool {
	for _, m := range answer {
		if m[0] == 'E' {
			return false
		}
	}
	last := answer[len(answer)-1]
	return last[0] == 'Z' && last[5] == 'I'
}

// end terminates the session's backend and waits until it has exited; its
// last words, FATAL 57P01, are then on their way to the client.
func (s *fatalSession) end() {
	s.ended.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var gone bool
	err := s.p.admin.QueryRow(ctx, `SELECT pg_terminate_backend($1, 10000)`, int32(s.pid.Load())).Scan(&gone)
	if err != nil || !gone {
		s.p.t.Errorf("terminating backend %d: %v (terminated: %v)", s.pid.Load(), err, gone)
	}
}

// readMessage reads one typed protocol message, returned whole: type byte,
// length, body.
func readMessage(r *bufio.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 1<<30 {
		return 0, nil, fmt.Errorf("message %q of length %d", hdr[0], n)
	}
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return 0, nil, err
	}
	return hdr[0], msg, nil
}
