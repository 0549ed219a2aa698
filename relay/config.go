// Package relay is the relay daemon: for each source database it streams the
// outbox through logical replication and publishes every row to Pulsar,
// confirming a position to Postgres only once the broker has receipted every
// message before it. Broker-side deduplication, stable producer names and
// sequence ids derived from the stream position make whatever a restarted
// relay sends again disappear (see sequence.go). Several relays may serve one
// source: a Postgres advisory lock picks the one that streams.
//
// Run serves every source and the HTTP endpoints (/v1/lag, /healthz,
// /readyz, /metrics) until its context ends.
package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/failpoint"
	"github.com/alpes/alpes/internal/pulsaradmin"
	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// Config configures a relay process.
//
// The relay is told where its dependencies are rather than given them: it
// takes a DSN for each source and a PulsarConfig for the broker, where the
// services take a *pgxpool.Pool and a pulsar.Client, because it owns every
// connection it makes and the lifetime of each. See PulsarConfig.
type Config struct {
	// Sources are the databases to stream, at least one.
	Sources []SourceConfig
	// Pulsar is the broker the relay publishes to.
	Pulsar PulsarConfig
	// AllowNoDedup publishes to namespaces without deduplication, with a
	// warning for each, instead of stopping the source. Duplicates may then
	// reach consumers after a restart; their inboxes must absorb them.
	AllowNoDedup bool
	// HTTPAddr is where /v1/lag, /healthz, /readyz and /metrics are served;
	// empty serves nothing.
	HTTPAddr string
	// HTTPToken, when set, makes /v1/lag and /metrics require
	// "Authorization: Bearer <HTTPToken>".
	HTTPToken string
	Logger    *slog.Logger
	// Failpoints, when set, crash the process at named points of the
	// publish/confirm cycle, for fault tests: relay/before-send and
	// relay/after-send (hit once per entry: a batch, or a message alone),
	// relay/after-receipt (once per message) and relay/before-confirm.
	Failpoints *failpoint.Set
	// TracerProvider receives a producer span per message published,
	// "send <topic>": a child of the trace context in the outbox row's
	// headers (W3C traceparent), from the send until the broker's receipt.
	// The message then carries the span's own trace context in its
	// properties, so its consumers continue the trace from the relay's
	// span. Nil or a no-op provider traces nothing, at no cost per message:
	// the row's headers then pass through as they are.
	TracerProvider trace.TracerProvider

	// admin reads deduplication policies; nil without Pulsar.AdminURL.
	admin *pulsaradmin.Client
	// sender configures each session's producers (pulsarsend).
	sender pulsarsend.Options
	// tracer makes the producer spans; nil when tracing is off.
	tracer trace.Tracer
}

// PulsarConfig says where the broker is and how to reach it. The relay
// makes its Pulsar connections itself instead of taking a pulsar.Client as
// the services do, for two reasons. Each streaming session creates its own
// producers' client (pulsarsend, the relay's own producer) and closes it
// when the session ends, whatever ended it: the next session starts on new
// connections, with nothing of the old one (a producer still registered
// under a name the new session takes over, a connection left half-open by a
// network partition) in its way. And the relay checks the broker's state
// through the admin API (deduplication policies, see dedup.go) and through
// its producers' handshakes (the broker's last sequence id, see
// publisher.go): both must reach the same broker with the same credentials,
// which one set of settings guarantees and a client built elsewhere would
// not. Replay (replay.go) publishes with pulsar-client-go, from the same
// settings.
type PulsarConfig struct {
	// URL is the broker's service URL, e.g. pulsar://127.0.0.1:6650.
	URL string
	// Token, when set, authenticates to the broker, and to its admin API,
	// with a token.
	Token string
	// TLSTrustCerts is a CA bundle file for pulsar+ssl:// URLs (and an
	// https:// AdminURL).
	TLSTrustCerts string
	// AdminURL is the broker's admin API, e.g. http://127.0.0.1:8080,
	// where the relay verifies, before it publishes to a namespace, that
	// deduplication is on there (see dedup.go). Empty verifies nothing, with
	// a warning at start; `alpes relay` always sets it.
	AdminURL string
	// OperationTimeout bounds connecting, lookups and producer creation,
	// and how long a producer may wait for a receipt: a session that cannot
	// publish ends after it. Default 30s.
	OperationTimeout time.Duration
}

// withDefaults returns p with a zero OperationTimeout set to its default,
// or an error when p names no broker.
func (p PulsarConfig) withDefaults() (PulsarConfig, error) {
	if p.URL == "" {
		return p, errors.New("relay: no Pulsar service URL configured")
	}
	if p.OperationTimeout <= 0 {
		p.OperationTimeout = 30 * time.Second
	}
	return p, nil
}

// clientOptions are the options of a Pulsar client of the broker, logging
// to log.
func (p PulsarConfig) clientOptions(log *slog.Logger) pulsar.ClientOptions {
	opts := pulsar.ClientOptions{
		URL:               p.URL,
		OperationTimeout:  p.OperationTimeout,
		ConnectionTimeout: 10 * time.Second,
		Logger:            pulsarslog.New(log),
	}
	if p.Token != "" {
		opts.Authentication = pulsar.NewAuthenticationToken(p.Token)
	}
	if p.TLSTrustCerts != "" {
		opts.TLSTrustCertsFilePath = p.TLSTrustCerts
	}
	return opts
}

// senderOptions are the options of the relay's producers (pulsarsend) for
// the broker: its token, its CA bundle for pulsar+ssl://, and
// OperationTimeout for every operation and for receipts.
func (p PulsarConfig) senderOptions() (pulsarsend.Options, error) {
	opts := pulsarsend.Options{
		URL:              p.URL,
		Token:            p.Token,
		OperationTimeout: p.OperationTimeout,
		ReceiptTimeout:   p.OperationTimeout,
	}
	if strings.HasPrefix(p.URL, "pulsar+ssl://") {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if p.TLSTrustCerts != "" {
			pool, err := loadCAPool(p.TLSTrustCerts)
			if err != nil {
				return opts, err
			}
			opts.TLS.RootCAs = pool
		}
	}
	return opts, nil
}

// SourceConfig is one database the relay streams.
type SourceConfig struct {
	// Name identifies the source in producer names, logs and the lag report,
	// e.g. "orders". It must never change for a given database: the broker
	// keeps its deduplication state under names derived from it (and from
	// the database's identity: cluster, timeline, database name).
	Name string
	// DSN connects to the database as a role with REPLICATION (alpes_relay).
	DSN string
	// Publication is the publication of the outbox. Default schema.Publication.
	Publication string
	// Slot is the permanent logical replication slot. Default alpes_relay_<Name>.
	Slot string
	// StartFresh allows creating the slot although the outbox holds rows a new
	// slot would not stream (see pgsource.SlotOptions).
	StartFresh bool
	// MaxInFlight bounds messages sent and awaiting receipts. Default 2000:
	// enough to keep the broker busy (the drain is no faster at 10,000, see
	// docs/benchmarks.md) while the relay stays well under 100 MiB.
	MaxInFlight int
	// MaxMessageBytes is the broker's largest message (Pulsar's
	// maxMessageSize): a row whose message, counted as the relay sends it
	// (payload, key, properties with the row's headers, and an allowance for
	// the rest of the metadata; see messageSize), would exceed it is
	// quarantined instead of being refused by the client or the broker.
	// Default 5 MiB, Pulsar's default; at least 32 KiB.
	MaxMessageBytes int
	// MaxPayloadBytes is the largest payload published; rows with larger ones
	// are quarantined. Default MaxMessageBytes: only the message's size
	// limits it.
	MaxPayloadBytes int
	// QuarantineTopic receives rows that cannot be published as they are.
	// Default persistent://alpes/relay/quarantine.v1.
	QuarantineTopic string
	// ValidatePayload, when set, checks a row's payload against its type; a
	// row that fails is quarantined.
	ValidatePayload func(messageType string, payload []byte) error
	// StatusInterval is how often a standby status goes to Postgres. Default 1s.
	StatusInterval time.Duration
	// HeartbeatInterval is how long a source may be idle before the relay
	// writes a heartbeat into its WAL, so the slot keeps advancing. Default 10s.
	HeartbeatInterval time.Duration
	// LockPollInterval is how often a waiting relay tries to take over the
	// source. Default 1s.
	LockPollInterval time.Duration
	// OutboxRetention is how long outbox rows are kept for replay before the
	// streaming relay deletes them; 0 means the default, 24h, and a negative
	// value keeps rows forever.
	OutboxRetention time.Duration
	// SweepInterval is how often the retention sweep runs. Default 1m.
	SweepInterval time.Duration
	// SweepBatch is how many outbox rows one sweep transaction deletes at
	// most, oldest first: a sweep deletes batch after batch until one deletes
	// fewer. Small batches hold row locks and make WAL only briefly. 0 means
	// DefaultSweepBatch (1000).
	SweepBatch int
}

// Defaults.
const (
	DefaultQuarantineTopic = "persistent://alpes/relay/quarantine.v1"
	DefaultMaxMessageBytes = 5 << 20 // Pulsar's default maxMessageSize
	DefaultSweepBatch      = 1000
	// DefaultHTTPAddr is where `alpes relay` serves /v1/lag, /healthz,
	// /readyz and /metrics unless told otherwise (Config.HTTPAddr has no default).
	DefaultHTTPAddr = "127.0.0.1:8081"
	// minMessageBytes is the smallest MaxMessageBytes: room for a quarantined
	// row's message once its payload and headers are dropped and its other
	// values cut to maxQuarantineValue (see quarantine.go).
	minMessageBytes = 32 << 10
)

// ErrNoSources is returned by New for a Config without sources.
var ErrNoSources = errors.New("relay: no sources configured")

func (c Config) withDefaults() (Config, error) {
	if len(c.Sources) == 0 {
		return c, ErrNoSources
	}
	pc, err := c.Pulsar.withDefaults()
	if err != nil {
		return c, err
	}
	c.Pulsar = pc
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.tracer = tracing.Tracer(c.TracerProvider)
	admin, err := newAdminClient(c.Pulsar)
	if err != nil {
		return c, err
	}
	c.admin = admin
	if c.sender, err = c.Pulsar.senderOptions(); err != nil {
		return c, err
	}
	seen := map[string]bool{}
	sources := make([]SourceConfig, len(c.Sources))
	for i, s := range c.Sources {
		s, err := s.withDefaults()
		if err != nil {
			return c, err
		}
		if seen[s.Name] {
			return c, fmt.Errorf("source %q given twice", s.Name)
		}
		seen[s.Name] = true
		sources[i] = s
	}
	c.Sources = sources
	return c, nil
}

func (s SourceConfig) withDefaults() (SourceConfig, error) {
	if s.Name == "" || s.DSN == "" {
		return s, fmt.Errorf("source %q: a name and a DSN are required", s.Name)
	}
	if !sourceName.MatchString(s.Name) {
		return s, fmt.Errorf("source name %q: use lowercase letters, digits and underscores", s.Name)
	}
	if _, err := pgconn.ParseConfig(s.DSN); err != nil {
		return s, fmt.Errorf("source %q: the DSN is not a Postgres connection string or URL: %w", s.Name, err)
	}
	if s.Publication == "" {
		s.Publication = schema.Publication
	}
	if s.Slot == "" {
		s.Slot = "alpes_relay_" + s.Name
	}
	if s.MaxInFlight <= 0 {
		s.MaxInFlight = 2000
	}
	if s.MaxMessageBytes <= 0 {
		s.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if s.MaxMessageBytes < minMessageBytes {
		return s, fmt.Errorf("source %q: max message size %d is below %d bytes", s.Name, s.MaxMessageBytes, minMessageBytes)
	}
	if s.MaxPayloadBytes <= 0 {
		s.MaxPayloadBytes = s.MaxMessageBytes
	}
	if s.QuarantineTopic == "" {
		s.QuarantineTopic = DefaultQuarantineTopic
	}
	if s.StatusInterval <= 0 {
		s.StatusInterval = time.Second
	}
	if s.HeartbeatInterval <= 0 {
		s.HeartbeatInterval = 10 * time.Second
	}
	if s.LockPollInterval <= 0 {
		s.LockPollInterval = time.Second
	}
	if s.OutboxRetention == 0 {
		s.OutboxRetention = 24 * time.Hour
	}
	if s.SweepInterval <= 0 {
		s.SweepInterval = time.Minute
	}
	if s.SweepBatch == 0 {
		s.SweepBatch = DefaultSweepBatch
	}
	if s.SweepBatch < 0 {
		return s, fmt.Errorf("source %q: sweep batch %d: want at least 1", s.Name, s.SweepBatch)
	}
	return s, nil
}
