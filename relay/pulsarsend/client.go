package pulsarsend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// Options says where the broker is and how to reach it.
type Options struct {
	// URL is the broker's service URL: pulsar://host:port or
	// pulsar+ssl://host:port.
	URL string
	// Token, when set, authenticates with a token.
	Token string
	// TLS configures pulsar+ssl:// connections (its ServerName is set per
	// broker); nil means the system's roots. Ignored for pulsar://.
	TLS *tls.Config
	// OperationTimeout bounds connecting, each lookup and each producer's
	// handshake and close. Default 30s.
	OperationTimeout time.Duration
	// KeepAlive is how long a connection may stay silent before it fails; a
	// PING goes out after half of it. Default 30s, as pulsar-client-go.
	KeepAlive time.Duration
	// ReceiptTimeout is how long a producer with sends pending may go
	// without a receipt before its connection fails. Default 30s.
	ReceiptTimeout time.Duration
	// ClientVersion is announced in CONNECT. Default "alpes-relay".
	ClientVersion string
}

func (o Options) withDefaults() (Options, error) {
	if o.URL == "" {
		return o, errors.New("pulsarsend: no service URL")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return o, fmt.Errorf("pulsarsend: parsing the service URL: %w", err)
	}
	switch u.Scheme {
	case "pulsar":
		o.TLS = nil
	case "pulsar+ssl":
		if o.TLS == nil {
			o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return o, fmt.Errorf("pulsarsend: service URL %q: want pulsar:// or pulsar+ssl://", o.URL)
	}
	if o.OperationTimeout <= 0 {
		o.OperationTimeout = 30 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.ReceiptTimeout <= 0 {
		o.ReceiptTimeout = 30 * time.Second
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "alpes-relay"
	}
	return o, nil
}

// Errors that fail sends and producers.
var (
	// ErrClosed: the Client or Producer was closed.
	ErrClosed = errors.New("pulsarsend: closed")
	// ErrConnection wraps whatever failed a connection: an I/O error, a
	// silent broker, a receipt missing past its bound, a protocol error.
	ErrConnection = errors.New("pulsarsend: connection failed")
	// ErrSendRefused wraps a SEND_ERROR from the broker.
	ErrSendRefused = errors.New("pulsarsend: the broker refused a message")
	// ErrClosedByBroker: the broker closed the producer (CLOSE_PRODUCER),
	// as it does when the topic is unloaded or moves to another broker.
	ErrClosedByBroker = errors.New("pulsarsend: the broker closed the producer")
	// ErrBrokerRefused wraps an ERROR answer to a request.
	ErrBrokerRefused = errors.New("pulsarsend: the broker refused")
)

// Client holds the connections to the brokers of one service URL and
// creates producers on them. It is safe for concurrent use.
type Client struct {
	opts Options

	mu     sync.Mutex
	conns  map[connKey]*conn
	closed bool
}

// connKey names a connection: the address dialled, and the broker a proxy
// at that address forwards to ("" for none).
type connKey struct{ target, proxyTo string }

// NewClient returns a Client of the broker opts names. It connects lazily,
// on the first CreateProducer.
func NewClient(opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{opts: opts, conns: map[connKey]*conn{}}, nil
}

// CreateProducer looks topic up and registers a producer called name on the
// broker that owns it, reusing the connection to that broker when there is
// a live one. The whole operation is bounded by Options.OperationTimeout.
func (c *Client) CreateProducer(ctx context.Context, topic, name string) (*Producer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.OperationTimeout)
	defer cancel()
	cn, err := c.lookup(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", topic, err)
	}
	p, err := cn.register(ctx, topic, name)
	if err != nil {
		return nil, fmt.Errorf("creating producer %s on %s: %w", name, topic, err)
	}
	return p, nil
}

// Close closes every producer (see Producer.Close) and connection. Sends
// still pending fail with ErrClosed.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[connKey]*conn{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Go(func() { cn.closeGracefully(c.opts.OperationTimeout) })
	}
	wg.Wait()
}

// connTo returns the live connection for key, dialling it when there is none.
func (c *Client) connTo(ctx context.Context, key connKey) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if cn, ok := c.conns[key]; ok && cn.alive() {
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	// Dial without the lock: two producers racing for a new broker may both
	// dial, and one connection then goes unused, which is rare and harmless.
	cn, err := dial(ctx, c.opts, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.fail(ErrClosed)
		return nil, ErrClosed
	}
	if old, ok := c.conns[key]; ok && old.alive() {
		cn.fail(ErrClosed)
		return old, nil
	}
	c.conns[key] = cn
	return cn, nil
}
