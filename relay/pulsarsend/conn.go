package pulsarsend

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// conn is one connection to a broker, shared by the lookups and producers
// of a Client. Three goroutines serve it: the writer (encodes and writes
// what is queued, flushing when the queue is empty), the reader (receipts,
// answers, pings) and the keeper (keep-alive and receipt timeouts). The
// first failure fails the connection for good, and every producer on it.
type conn struct {
	opts           Options
	key            connKey
	nc             net.Conn
	maxMessageSize int    // the broker's, from CONNECTED
	batchBody      []byte // the writer goroutine's scratch for a batch's messages

	mu       sync.Mutex
	queue    []outgoing // waiting for the writer
	requests map[uint64]chan *wirev1.BaseCommand
	nextID   uint64 // request and producer ids
	err      error  // why the connection failed; nil while it is alive

	producers atomic.Pointer[map[uint64]*Producer] // copy on write: read per receipt
	wake      chan struct{}                        // the queue became non-empty
	done      chan struct{}                        // closed when the connection fails
	heard     atomic.Bool                          // a frame arrived since the keeper last looked
}

// outgoing is a frame for the writer: a message of a producer, a batch of
// messages, or a command.
type outgoing struct {
	p     *Producer
	msg   *pulsar.ProducerMessage
	seq   uint64
	batch []BatchMessage
	cmd   *wirev1.BaseCommand
}

// dial connects to key's target, completes the CONNECT handshake (asking a
// proxy to forward to key.proxyTo when set) and starts serving.
func dial(ctx context.Context, opts Options, key connKey) (*conn, error) {
	u, err := url.Parse(key.target)
	if err != nil {
		return nil, fmt.Errorf("parsing broker URL %q: %w", key.target, err)
	}
	d := net.Dialer{}
	var nc net.Conn
	if opts.TLS != nil {
		cfg := opts.TLS.Clone()
		cfg.ServerName = u.Hostname()
		nc, err = (&tls.Dialer{NetDialer: &d, Config: cfg}).DialContext(ctx, "tcp", u.Host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: dialling %s: %w", ErrConnection, key.target, err)
	}
	r := newFrameReader(nc)
	max, err := handshake(ctx, nc, r, opts, key.proxyTo)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: connecting to %s: %w", ErrConnection, key.target, err)
	}
	c := &conn{
		opts: opts, key: key, nc: nc, maxMessageSize: max,
		requests: map[uint64]chan *wirev1.BaseCommand{},
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.producers.Store(&map[uint64]*Producer{})
	go c.readLoop(r)
	go c.writeLoop()
	go c.keep()
	return c, nil
}

// handshake sends CONNECT and reads CONNECTED, within ctx's deadline. It
// returns the broker's largest message.
func handshake(ctx context.Context, nc net.Conn, r *frameReader, opts Options, proxyTo string) (int, error) {
	if deadline, ok := ctx.Deadline(); ok {
		nc.SetDeadline(deadline)
		defer nc.SetDeadline(time.Time{})
	}
	connect := &wirev1.CommandConnect{
		ClientVersion:   proto.String(opts.ClientVersion),
		ProtocolVersion: proto.Int32(pulsarwire.ProtocolVersion),
	}
	if opts.Token != "" {
		connect.AuthMethodName = proto.String("token")
		connect.AuthData = []byte(opts.Token)
	}
	if proxyTo != "" {
		connect.ProxyToBrokerUrl = &proxyTo
	}
	frame, err := pulsarwire.AppendFrame(nil, &wirev1.BaseCommand{Type: wirev1.BaseCommand_CONNECT.Enum(), Connect: connect}, nil)
	if err != nil {
		return 0, err
	}
	if _, err := nc.Write(frame); err != nil {
		return 0, err
	}
	for {
		f, err := r.next()
		if err != nil {
			return 0, err
		}
		switch f.cmd.GetType() {
		case wirev1.BaseCommand_CONNECTED:
			max := int(f.cmd.GetConnected().GetMaxMessageSize())
			if max <= 0 {
				max = pulsarwire.DefaultMaxMessageSize
			}
			return max, nil
		case wirev1.BaseCommand_ERROR:
			e := f.cmd.GetError()
			return 0, fmt.Errorf("%w: %s: %s", ErrBrokerRefused, e.GetError(), e.GetMessage())
		}
		// AUTH_CHALLENGE and the like: a token needs no second round.
	}
}

// alive reports whether the connection has not failed.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// fail fails the connection with err (the first error wins), closes the
// socket and fails every producer on it and every request in flight.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.queue = nil
	close(c.done)
	c.mu.Unlock()
	c.nc.Close()
	for _, p := range *c.producers.Load() {
		p.fail(err)
	}
}

// enqueue hands o to the writer.
func (c *conn) enqueue(o outgoing) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.queue = append(c.queue, o)
	first := len(c.queue) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// request sends the command build makes with a new request id, and returns
// the answer with that id. An ERROR answer is returned as an error
// wrapping ErrBrokerRefused.
func (c *conn) request(ctx context.Context, build func(id uint64) *wirev1.BaseCommand) (*wirev1.BaseCommand, error) {
	answer := make(chan *wirev1.BaseCommand, 2)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.requests[id] = answer
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.requests, id)
		c.mu.Unlock()
	}()
	if err := c.enqueue(outgoing{cmd: build(id)}); err != nil {
		return nil, err
	}
	for {
		select {
		case resp := <-answer:
			if e := resp.GetError(); resp.GetType() == wirev1.BaseCommand_ERROR {
				return nil, fmt.Errorf("%w: %s: %s", ErrBrokerRefused, e.GetError(), e.GetMessage())
			}
			// A producer that is not ready yet (an access mode that waits)
			// gets a second answer; ours are shared, but follow the protocol.
			if ps := resp.GetProducerSuccess(); ps != nil && !ps.GetProducerReady() {
				continue
			}
			return resp, nil
		case <-c.done:
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the broker: %w", ctx.Err())
		}
	}
}

// answer hands resp to the request waiting for id, if any.
func (c *conn) answer(id uint64, resp *wirev1.BaseCommand) {
	c.mu.Lock()
	ch := c.requests[id]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- resp:
		default:
		}
	}
}

// newID returns an id for a producer.
func (c *conn) newID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return c.nextID
}

func (c *conn) addProducer(p *Producer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.producers.Load()
	m := make(map[uint64]*Producer, len(old)+1)
	for id, q := range old {
		m[id] = q
	}
	m[p.id] = p
	c.producers.Store(&m)
}

func (c *conn) removeProducer(p *Producer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.producers.Load()
	if _, ok := old[p.id]; !ok {
		return
	}
	m := make(map[uint64]*Producer, len(old))
	for id, q := range old {
		if id != p.id {
			m[id] = q
		}
	}
	c.producers.Store(&m)
}

// closeGracefully closes every producer on the connection, each within
// timeout, then the connection.
func (c *conn) closeGracefully(timeout time.Duration) {
	var wg sync.WaitGroup
	for _, p := range *c.producers.Load() {
		wg.Go(func() { p.closeWithin(timeout) })
	}
	wg.Wait()
	c.fail(ErrClosed)
}
