package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/internal/failpoint"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/eventcatalog"
)

type relayCmd struct {
	Run    relayRunCmd    `cmd:"" default:"withargs" help:"Stream every source's outbox to Pulsar (the default: alpes relay [flags]). alpes relay replay --help: publish a window of the outbox again."`
	Replay relayReplayCmd `cmd:"" help:"Publish the retained outbox rows of a time window again, with their original event ids."`
}

type relayReplayCmd struct {
	Source          string `help:"The source, NAME=DSN, as the relay serves it." required:"" placeholder:"NAME=DSN"`
	Since           string `help:"Start of the window: an RFC 3339 time, or a duration before now such as 2h." required:""`
	Until           string `help:"End of the window (exclusive), like --since; now when empty."`
	Topic           string `help:"Replay only this topic's rows."`
	PulsarURL       string `help:"Pulsar service URL." default:"${pulsar_url}"`
	PulsarToken     string `help:"Token to authenticate to Pulsar." placeholder:"TOKEN"`
	MaxMessageBytes int    `help:"The broker's largest message (its maxMessageSize); larger rows are reported and left in the outbox. Zero means Pulsar's default, 5 MiB."`
}

func (c *relayReplayCmd) Run(ctx context.Context, e env) error {
	name, dsn, err := parseSource(c.Source)
	if err != nil {
		return err
	}
	now := time.Now()
	since, err := parseWhen(c.Since, now)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	var until time.Time
	if c.Until != "" {
		if until, err = parseWhen(c.Until, now); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	report, err := relay.Replay(ctx, relay.ReplayConfig{
		Source: name, DSN: dsn, Since: since, Until: until, Topic: c.Topic,
		Pulsar: relay.PulsarConfig{URL: c.PulsarURL, Token: c.PulsarToken}, MaxMessageBytes: c.MaxMessageBytes, Logger: e.log,
	})
	if err != nil {
		return err
	}
	for topic, n := range report.Topics {
		fmt.Fprintf(e.stdout, "%s: %d messages\n", topic, n)
	}
	fmt.Fprintf(e.stdout, "replayed %d messages\n", report.Total)
	for _, s := range report.Skipped {
		fmt.Fprintf(e.stdout, "not replayed: event %s on %s: %s\n", s.EventID, s.Topic, s.Reason)
	}
	if len(report.Skipped) > 0 {
		return fmt.Errorf("%d rows could not be published; they stay in the outbox", len(report.Skipped))
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

type relayRunCmd struct {
	Source              []string      `help:"A source database, NAME=DSN; repeat for several. NAME must never change for a database (it names the slot and the producers)." sep:";" required:"" placeholder:"NAME=DSN"`
	PulsarURL           string        `help:"Pulsar service URL." default:"${pulsar_url}"`
	PulsarToken         string        `help:"Token to authenticate to Pulsar." placeholder:"TOKEN"`
	PulsarTLSTrustCerts string        `help:"CA bundle for pulsar+ssl:// URLs." placeholder:"FILE"`
	PulsarAdminURL      string        `help:"Pulsar admin API, where the relay verifies that deduplication is on before publishing to a namespace; default: the host of --pulsar-url, port ${broker_admin_port} (https and ${pulsar_tls_admin_port} for pulsar+ssl://)." placeholder:"URL"`
	AllowNoDedup        bool          `help:"Publish to namespaces without deduplication, with a warning, instead of stopping the source (a restarted relay may then publish duplicates)."`
	PulsarTenant        string        `help:"Pulsar tenant of the deployment: rows that cannot be published go to persistent://TENANT/relay/quarantine.v1." default:"${pulsar_tenant}"`
	HTTPAddr            string        `help:"Listen address of /v1/lag, /healthz, /readyz and /metrics; empty disables." default:"${relay_addr}"`
	HTTPToken           string        `help:"Require this bearer token on /v1/lag and /metrics." placeholder:"TOKEN"`
	StartFresh          bool          `help:"Create a missing slot even though the outbox holds rows it will not stream (replay them)."`
	MaxInFlight         int           `help:"Messages awaiting broker receipts, per source, before reading pauses." default:"2000"`
	MaxMessageBytes     int           `help:"The broker's largest message (its maxMessageSize): rows whose message would be larger are quarantined. Zero means Pulsar's default, 5 MiB."`
	StatusInterval      time.Duration `help:"How often the confirmed position is reported to Postgres." default:"1s"`
	Heartbeat           time.Duration `help:"Idle time after which a heartbeat is written into the source's WAL." default:"10s"`
	OutboxRetention     time.Duration `help:"Keep outbox rows this long for replay, then delete them; negative keeps them forever." default:"24h"`
	OutboxSweepBatch    int           `help:"Outbox rows the retention sweep deletes per transaction." default:"1000"`
	OutboxSweepInterval time.Duration `hidden:"" help:"Soaks only: how often the outbox is swept (default every minute)."`
	Failpoints          string        `hidden:"" help:"Fault tests only: crash at named points, e.g. relay/after-send=crash@100."`
}

func (c *relayRunCmd) Run(ctx context.Context, e env) error {
	topics, err := eventcatalog.TopicsFor(c.PulsarTenant)
	if err != nil {
		return fmt.Errorf("--pulsar-tenant: %w", err)
	}
	var sources []relay.SourceConfig
	for _, s := range c.Source {
		name, dsn, err := parseSource(s)
		if err != nil {
			return err
		}
		sources = append(sources, relay.SourceConfig{
			Name:              name,
			DSN:               dsn,
			StartFresh:        c.StartFresh,
			MaxInFlight:       c.MaxInFlight,
			MaxMessageBytes:   c.MaxMessageBytes,
			StatusInterval:    c.StatusInterval,
			HeartbeatInterval: c.Heartbeat,
			ValidatePayload:   eventcatalog.ValidatePayload,
			OutboxRetention:   c.OutboxRetention,
			SweepBatch:        c.OutboxSweepBatch,
			SweepInterval:     c.OutboxSweepInterval,
			QuarantineTopic:   topics.RelayQuarantine,
		})
	}
	failpoints, err := failpoint.Parse(c.Failpoints)
	if err != nil {
		return err
	}
	adminURL := c.PulsarAdminURL
	if adminURL == "" {
		if adminURL, err = defaultAdminURL(c.PulsarURL); err != nil {
			return err
		}
	}
	tp, stopTracing, err := componentTracing(ctx, e, "relay")
	if err != nil {
		return err
	}
	defer stopTracing()
	r, err := relay.New(relay.Config{
		TracerProvider: tp,
		Failpoints:     failpoints,
		Sources:        sources,
		Pulsar: relay.PulsarConfig{
			URL: c.PulsarURL, Token: c.PulsarToken, TLSTrustCerts: c.PulsarTLSTrustCerts, AdminURL: adminURL,
		},
		AllowNoDedup: c.AllowNoDedup,
		HTTPAddr:     c.HTTPAddr,
		HTTPToken:    c.HTTPToken,
		Logger:       e.log,
	})
	if err != nil {
		return err
	}
	err = r.Run(ctx)
	switch {
	case errors.Is(err, relay.ErrDeduplicationOff):
		return fmt.Errorf("%w (see /v1/lag and the log above; --allow-no-dedup publishes without deduplication)", err)
	case errors.Is(err, relay.ErrSourcesLost):
		return fmt.Errorf("%w (see /v1/lag and the log above)", err)
	}
	return err
}

// defaultAdminURL is the admin API of the broker at serviceURL on Pulsar's
// default admin ports: http on broker.DefaultAdminPort for
// pulsar://host:port, https on pulsarTLSAdminPort for pulsar+ssl://. A URL
// listing several brokers gives the first one's.
func defaultAdminURL(serviceURL string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("--pulsar-url %q: want pulsar://host:port (or give --pulsar-admin-url)", serviceURL)
	}
	host, _, _ := strings.Cut(u.Host, ",")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if u.Scheme == "pulsar+ssl" {
		return "https://" + net.JoinHostPort(host, pulsarTLSAdminPort), nil
	}
	return "http://" + net.JoinHostPort(host, broker.DefaultAdminPort), nil
}

// parseSource splits a --source value, NAME=DSN. A value without its NAME=
// would split inside the DSN's own parameters and put the password into the
// name, which error messages quote; so a name that looks like part of a URL
// is refused here, with the password hidden.
func parseSource(s string) (name, dsn string, err error) {
	name, dsn, ok := strings.Cut(s, "=")
	if !ok || name == "" || dsn == "" || strings.ContainsAny(name, ":/@?") {
		return "", "", fmt.Errorf("--source %q: want NAME=DSN", redactDSN(s))
	}
	return name, dsn, nil
}

// redactDSN hides a password in a connection string that is about to be
// printed: postgres://user:secret@host → postgres://user:***@host.
func redactDSN(s string) string {
	at := strings.Index(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return s[:scheme+3] + user + ":***" + s[at:]
	}
	return s
}
