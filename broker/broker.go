package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Broker is a running embedded broker. Its methods are safe for
// concurrent use.
type Broker struct {
	cfg        Config
	log        *slog.Logger
	ln         net.Listener
	admin      *http.Server
	adminLn    net.Listener
	serviceURL string

	mu          sync.Mutex // guards topics, partitioned, namespaces, conns, closed
	topics      map[string]*topic
	partitioned map[string]int  // base topic name -> number of partitions
	namespaces  map[string]bool // existing namespaces, "tenant/ns"
	conns       map[*conn]struct{}
	closed      bool

	// policyMu guards dedupPolicy. It is a leaf lock, taken with a
	// topic's lock held.
	policyMu         sync.RWMutex
	dedupPolicy      map[string]bool // namespace -> deduplication enabled
	topicDedupPolicy map[string]bool // topic (partitioned: base name) -> deduplication enabled

	commits          committer
	crashed          atomic.Bool // set by crash (tests): skip the final commit and cursor save
	nextProducerName atomic.Uint64
	nextConsumerUID  atomic.Uint64
	wg               sync.WaitGroup
	done             chan struct{}
	closeOnce        sync.Once
	closeStoresOnce  sync.Once
}

// Start starts a broker that listens on cfg's addresses and serves until
// Close is called or ctx ends. It returns once both listeners are bound, so
// Addr, ServiceURL and AdminURL are valid right away.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:              cfg,
		log:              cfg.Logger,
		topics:           make(map[string]*topic),
		partitioned:      make(map[string]int),
		namespaces:       map[string]bool{defaultNamespace: true},
		dedupPolicy:      make(map[string]bool),
		topicDedupPolicy: make(map[string]bool),
		conns:            make(map[*conn]struct{}),
		done:             make(chan struct{}),
		commits:          committer{signal: make(chan struct{}, 1)},
	}
	if err := b.recover(); err != nil {
		return nil, fmt.Errorf("recovering %s: %w", cfg.DataDir, err)
	}
	var lc net.ListenConfig
	if b.ln, err = lc.Listen(ctx, "tcp", cfg.ServiceAddr); err != nil {
		b.closeStores()
		return nil, fmt.Errorf("listening for the binary protocol: %w", err)
	}
	if b.adminLn, err = lc.Listen(ctx, "tcp", cfg.AdminAddr); err != nil {
		b.ln.Close()
		b.closeStores()
		return nil, fmt.Errorf("listening for the admin API: %w", err)
	}
	b.serviceURL = "pulsar://" + b.advertisedAddr()
	b.admin = &http.Server{Handler: b.adminHandler(), ReadHeaderTimeout: 10 * time.Second}

	b.wg.Add(5)
	go func() { defer b.wg.Done(); b.acceptLoop() }()
	go func() { defer b.wg.Done(); b.commitLoop() }()
	go func() { defer b.wg.Done(); b.sampleRates() }()
	go func() { defer b.wg.Done(); b.purgeInactiveProducersLoop() }()
	go func() {
		defer b.wg.Done()
		if err := b.admin.Serve(b.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("admin API stopped", "err", err)
		}
	}()
	go func() { // not in wg: it may be the one calling Close
		select {
		case <-ctx.Done():
			b.Close()
		case <-b.done:
		}
	}()
	b.log.Info("broker started", "service_url", b.ServiceURL(), "admin_url", b.AdminURL())
	return b, nil
}

// Run starts a broker with cfg and serves until ctx ends, then closes it.
func Run(ctx context.Context, cfg Config) error {
	b, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}

// advertisedAddr is the host:port put in ServiceURL and in LOOKUP answers:
// Config.AdvertisedAddr, else the bound service address.
func (b *Broker) advertisedAddr() string {
	if b.cfg.AdvertisedAddr != "" {
		return b.cfg.AdvertisedAddr
	}
	addr := b.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Addr returns the address of the binary protocol listener.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// ServiceURL returns the URL clients connect to, e.g. pulsar://127.0.0.1:6650:
// the advertised address (Config.AdvertisedAddr) when one is set, so that
// clients given this URL go where the broker's lookups send them anyway.
// Addr is where the broker itself listens.
func (b *Broker) ServiceURL() string { return b.serviceURL }

// AdminURL returns the base URL of the admin API, e.g. http://127.0.0.1:8080.
func (b *Broker) AdminURL() string {
	addr := b.adminLn.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Close stops accepting connections, closes every client connection and
// the admin API, and waits for the broker's goroutines to end. Clients see
// their connections drop, as when a real broker goes away. It is safe to
// call more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		b.mu.Lock()
		b.closed = true
		conns := make([]*conn, 0, len(b.conns))
		for c := range b.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()
		b.ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.admin.Shutdown(ctx); err != nil {
			b.admin.Close()
		}
		for _, c := range conns {
			c.close()
		}
	})
	b.wg.Wait()
	b.closeStoresOnce.Do(b.closeStores)
	return nil
}

// closeStores releases every topic's store. Called once all goroutines
// that use them have ended.
func (b *Broker) closeStores() {
	for _, t := range b.allTopics() {
		t.mu.Lock()
		if err := t.store.close(); err != nil {
			b.log.Error("closing topic store", "topic", t.name.String(), "err", err)
		}
		t.mu.Unlock()
	}
}

func (b *Broker) acceptLoop() {
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.log.Error("accepting connections", "err", err)
			return
		}
		c := newConn(b, nc)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}
