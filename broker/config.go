package broker

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/alpes/alpes/internal/pulsarwire"
)

// Real Pulsar's ports, which the broker listens on by default, on loopback.
const (
	// DefaultServicePort is the port of Pulsar's binary protocol.
	DefaultServicePort = "6650"
	// DefaultAdminPort is the port of Pulsar's admin HTTP API.
	DefaultAdminPort = "8080"
	// DefaultServiceAddr is where the binary protocol listens by default.
	DefaultServiceAddr = "127.0.0.1:" + DefaultServicePort
	// DefaultAdminAddr is where the admin API listens by default.
	DefaultAdminAddr = "127.0.0.1:" + DefaultAdminPort
)

// Config configures a broker. Start this from DefaultConfig: an empty
// string or zero number takes the default documented on its field, but a
// bool is taken as given, and Deduplication defaults to true.
type Config struct {
	// ServiceAddr is the host:port of the binary protocol listener.
	// Default DefaultServiceAddr; port 0 picks a free port (see Broker.Addr).
	ServiceAddr string
	// AdminAddr is the host:port of the admin HTTP API.
	// Default DefaultAdminAddr; port 0 picks a free port.
	AdminAddr string
	// AdvertisedAddr is the host:port the broker tells clients to connect
	// to: the address in the broker URL that LOOKUP returns and in
	// ServiceURL. Set it when clients reach the broker through something
	// in between (a proxy, a port mapping), or they would bypass it after
	// their first lookup. Default: the address the service listener is
	// bound to, with 127.0.0.1 for an unspecified host (0.0.0.0 or ::).
	AdvertisedAddr string
	// DataDir, when not empty, makes the broker durable in that directory:
	// topics, their entries, durable subscriptions' cursors, schemas,
	// deduplication state, partitioned topics and namespace policies
	// survive a restart or a crash. Empty keeps everything in memory. Only
	// one broker may use a directory at a time (not enforced).
	DataDir string
	// Deduplication turns broker-side deduplication on for every namespace
	// that has no policy of its own. Default (DefaultConfig) true, where
	// real Pulsar's default is false: alpes's relay relies on it.
	Deduplication bool
	// DeduplicationInactivityTimeout is how long the deduplication state
	// of a producer name outlives its last producer, as Pulsar's
	// brokerDeduplicationProducerInactivityTimeoutMinutes (and checked, as
	// there, once per timeout, so it may live up to twice as long). A name
	// that comes back later starts afresh: its re-sends are no longer
	// dropped. Default 6 hours, Pulsar's.
	DeduplicationInactivityTimeout time.Duration
	// AuthToken, when not empty, makes the broker require token
	// authentication: CONNECT must carry method "token" and this token, and
	// admin requests the header "Authorization: Bearer <token>".
	AuthToken string
	// MaxMessageSize is the largest message (metadata plus payload) the
	// broker accepts and announces in CONNECTED. Default 5 MiB.
	MaxMessageSize int
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
	// KeySharedAutoSplitRanges makes Key_Shared subscriptions in the
	// default (AUTO_SPLIT) mode split the hash range in halves as
	// consumers join, as Pulsar does with
	// subscriptionKeySharedUseConsistentHashing=false. By default they
	// use a consistent-hash ring, as Pulsar does by default.
	KeySharedAutoSplitRanges bool
	// KeySharedRingPoints is how many points each consumer puts on a
	// Key_Shared subscription's consistent-hash ring (Pulsar's
	// subscriptionKeySharedConsistentHashingReplicaPoints). Default 100,
	// as in Pulsar; the same value as the Pulsar compared with gives the
	// same consumers the same keys.
	KeySharedRingPoints int

	// keepAliveInterval is how often the broker pings each client; a
	// client silent for twice as long is disconnected. Default 30s, as in
	// Pulsar. Unexported: tests shorten it.
	keepAliveInterval time.Duration
	// storage holds a durable broker's topic logs; nil means the
	// operating system's files. Tests inject faults through it.
	storage storageFS
}

// DefaultConfig returns the configuration of `alpes broker` without flags:
// real Pulsar's ports on loopback, in memory, deduplication on, no
// authentication, 5 MiB messages, no logs.
func DefaultConfig() Config {
	c := Config{Deduplication: true}
	c, _ = c.withDefaults()
	return c
}

// withDefaults returns c with every empty field set to its default.
func (c Config) withDefaults() (Config, error) {
	if c.ServiceAddr == "" {
		c.ServiceAddr = DefaultServiceAddr
	}
	if c.AdminAddr == "" {
		c.AdminAddr = DefaultAdminAddr
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = pulsarwire.DefaultMaxMessageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.DeduplicationInactivityTimeout <= 0 {
		c.DeduplicationInactivityTimeout = 6 * time.Hour
	}
	if c.KeySharedRingPoints == 0 {
		c.KeySharedRingPoints = defaultRingPoints
	}
	if c.KeySharedRingPoints < 0 {
		return c, fmt.Errorf("key-shared ring points %d: want at least 1", c.KeySharedRingPoints)
	}
	if c.keepAliveInterval == 0 {
		c.keepAliveInterval = 30 * time.Second
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > 1<<30 {
		return c, fmt.Errorf("max message size %d is outside [1 KiB, 1 GiB]", c.MaxMessageSize)
	}
	for _, addr := range []string{c.ServiceAddr, c.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return c, fmt.Errorf("parsing listen address %q: %w", addr, err)
		}
	}
	if c.AdvertisedAddr != "" {
		host, port, err := net.SplitHostPort(c.AdvertisedAddr)
		if err != nil {
			return c, fmt.Errorf("parsing advertised address %q: %w", c.AdvertisedAddr, err)
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("advertised address %q: want host:port with a host and a port in 1..65535", c.AdvertisedAddr)
		}
	}
	return c, nil
}
