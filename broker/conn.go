package broker

import (
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// conn is one client connection. Its reader goroutine (serve) handles
// commands in order; its writer goroutine sends what send queued. The
// producer and consumer maps are guarded by mu, which is taken after a
// topic's lock, never before.
type conn struct {
	b   *Broker
	nc  net.Conn
	log *slog.Logger

	lastRead atomic.Int64 // unix nanoseconds of the last frame received
	probing  atomic.Bool  // a liveness probe is under way

	outMu     sync.Mutex
	out       []byte // encoded frames waiting for the writer
	outSignal chan struct{}
	closing   chan struct{}
	closeOnce sync.Once

	// clientVersion is what the client's CONNECT called itself, for stats.
	clientVersion string

	mu        sync.Mutex
	producers map[uint64]*producer
	consumers map[uint64]*consumer
}

func newConn(b *Broker, nc net.Conn) *conn {
	return &conn{
		b:         b,
		nc:        nc,
		log:       b.log.With("remote", nc.RemoteAddr().String()),
		outSignal: make(chan struct{}, 1),
		closing:   make(chan struct{}),
		producers: make(map[uint64]*producer),
		consumers: make(map[uint64]*consumer),
	}
}

// serve runs the connection until the client goes away or the broker
// closes it, then releases its producers and consumers.
func (c *conn) serve() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.keepAlive() }()
	defer func() {
		c.close()
		wg.Wait()
		c.release()
	}()

	r := pulsarwire.NewReader(c.nc, pulsarwire.MaxFrameSize(c.b.cfg.MaxMessageSize))
	c.lastRead.Store(time.Now().UnixNano())
	if !c.handshake(r) {
		return
	}
	for {
		f, err := r.ReadFrame()
		if err != nil {
			c.logReadError(err)
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if !c.handle(f) {
			return
		}
	}
}

func (c *conn) logReadError(err error) {
	select {
	case <-c.closing:
		return
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		c.log.Debug("client disconnected")
		return
	}
	c.log.Warn("closing connection", "err", err)
}

// handshake expects CONNECT as the first frame and answers CONNECTED, or
// ERROR when authentication fails.
func (c *conn) handshake(r *pulsarwire.Reader) bool {
	c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.keepAliveInterval))
	f, err := r.ReadFrame()
	c.nc.SetReadDeadline(time.Time{})
	if err != nil {
		c.logReadError(err)
		return false
	}
	connect := f.Command.GetConnect()
	if f.Command.GetType() != wirev1.BaseCommand_CONNECT || connect == nil {
		c.log.Warn("first frame is not CONNECT", "type", f.Command.GetType())
		return false
	}
	if !c.authenticate(connect) {
		c.send(&wirev1.BaseCommand{
			Type: wirev1.BaseCommand_ERROR.Enum(),
			Error: &wirev1.CommandError{
				RequestId: proto.Uint64(0),
				Error:     wirev1.ServerError_AuthenticationError.Enum(),
				Message:   proto.String("authentication failed"),
			},
		}, nil)
		c.flushAndClose()
		return false
	}
	c.clientVersion = connect.GetClientVersion()
	c.send(&wirev1.BaseCommand{
		Type: wirev1.BaseCommand_CONNECTED.Enum(),
		Connected: &wirev1.CommandConnected{
			ServerVersion:   proto.String("alpes-broker"),
			ProtocolVersion: proto.Int32(min(connect.GetProtocolVersion(), pulsarwire.ProtocolVersion)),
			MaxMessageSize:  proto.Int32(int32(c.b.cfg.MaxMessageSize)),
		},
	}, nil)
	return true
}

func (c *conn) authenticate(connect *wirev1.CommandConnect) bool {
	if c.b.cfg.AuthToken == "" {
		return true
	}
	return connect.GetAuthMethodName() == "token" &&
		subtle.ConstantTimeCompare(connect.GetAuthData(), []byte(c.b.cfg.AuthToken)) == 1
}

// send queues a frame for the writer. It never blocks on the network, so
// it may be called with a topic's lock held. Frames queued after the
// connection closed are dropped.
func (c *conn) send(cmd *wirev1.BaseCommand, msg *pulsarwire.Message) {
	c.outMu.Lock()
	var err error
	c.out, err = pulsarwire.AppendFrame(c.out, cmd, msg)
	c.outMu.Unlock()
	if err != nil {
		// A command the client could not decode is a broker bug.
		c.log.Error("encoding frame", "err", err)
		return
	}
	c.wakeWriter()
}

// sendReceipt queues a SEND_RECEIPT as send does. One goes out for every
// message stored, so it is encoded by hand rather than built and
// marshalled as a BaseCommand.
func (c *conn) sendReceipt(r *pulsarwire.SendReceipt) {
	c.outMu.Lock()
	c.out = pulsarwire.AppendSendReceipt(c.out, r)
	c.outMu.Unlock()
	c.wakeWriter()
}

// wakeWriter tells the writer that frames are queued.
func (c *conn) wakeWriter() {
	select {
	case c.outSignal <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	var buf []byte
	for {
		select {
		case <-c.closing:
			return
		case <-c.outSignal:
		}
		c.outMu.Lock()
		buf, c.out = c.out, buf[:0]
		c.outMu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if _, err := c.nc.Write(buf); err != nil {
			c.close()
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a large buffer after a burst
		}
	}
}

// flushAndClose writes what is queued, best effort, then closes.
func (c *conn) flushAndClose() {
	c.outMu.Lock()
	buf := c.out
	c.out = nil
	c.outMu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(buf)
	c.close()
}

// keepAlive pings the client every keep-alive interval and closes the
// connection when nothing at all arrived in the interval after a ping.
func (c *conn) keepAlive() {
	interval := c.b.cfg.keepAliveInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	var pinged int64 // unix nanoseconds of the unanswered ping, or 0
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		if c.lastRead.Load() >= pinged {
			pinged = 0 // the client spoke since the last ping
		}
		if pinged != 0 && now-pinged >= int64(interval)/2 {
			c.log.Warn("closing silent connection")
			c.close()
			return
		}
		if pinged == 0 {
			c.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}, nil)
			pinged = now
		}
	}
}

// close closes the network connection; serve then releases the
// connection's producers and consumers. Safe to call more than once and
// from any goroutine.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.nc.Close()
	})
}

// release detaches every producer and consumer of the closed connection
// from its topic; the consumers' unacknowledged messages are redelivered
// to the subscription's other consumers.
func (c *conn) release() {
	c.mu.Lock()
	producers := make([]*producer, 0, len(c.producers))
	for _, p := range c.producers {
		producers = append(producers, p)
	}
	consumers := make([]*consumer, 0, len(c.consumers))
	for _, cs := range c.consumers {
		consumers = append(consumers, cs)
	}
	c.mu.Unlock()
	for _, p := range producers {
		p.topic.removeProducer(p)
	}
	for _, cs := range consumers {
		cs.sub.topic.removeConsumer(cs)
	}
}

// probe checks that the client is still there, as Pulsar does when a
// producer name, an exclusive subscription or sticky Key_Shared hash
// ranges it holds are claimed from another connection: it pings, and
// closes the connection if nothing arrives within a sixth of the
// keep-alive interval (5s by default). The claimant, refused meanwhile,
// retries and then gets what it asked for. A half-open connection thus
// holds nothing until the keep-alive gives up.
func (c *conn) probe() {
	if !c.probing.CompareAndSwap(false, true) {
		return
	}
	sent := time.Now().UnixNano()
	c.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_PING.Enum(), Ping: &wirev1.CommandPing{}}, nil)
	time.AfterFunc(c.b.cfg.keepAliveInterval/6, func() {
		c.probing.Store(false)
		if c.lastRead.Load() < sent {
			c.log.Warn("closing unresponsive connection: what it holds was claimed")
			c.close()
		}
	})
}
