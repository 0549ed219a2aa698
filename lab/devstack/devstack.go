// Package devstack runs alpes on one machine for development: a throwaway
// Postgres cluster with a migrated database per service, a broker (the
// embedded one, or the real Apache Pulsar), the relay streaming every
// producing service's outbox, and the services: what lab/stack describes,
// each component on the address Config gives it, wired to its peers as the
// description says. `alpes dev` is a thin command over Run, its flags'
// defaults the description's.
package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/lab/stack"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Config configures the development stack.
type Config struct {
	// PostgresPort is the port of the throwaway cluster on 127.0.0.1; 0 picks a free one.
	PostgresPort int
	// PostgresBinDir holds initdb and postgres; empty means discover them.
	PostgresBinDir string
	// DataDir keeps the cluster's files; empty means a temporary directory,
	// removed on exit.
	DataDir string
	// Pulsar is the broker to run: PulsarEmbedded (the default) or
	// PulsarReal. PulsarURL and PulsarAdminURL instead name a Pulsar that
	// already runs; the stack then starts none.
	Pulsar                    string
	PulsarURL, PulsarAdminURL string
	// PulsarCacheDir is where the real Pulsar's distribution is kept; empty
	// means pulsarstandalone.DefaultCacheDir.
	PulsarCacheDir string
	// Tenant is the Pulsar tenant of the stack's topics; empty means
	// eventcatalog.DefaultTenant. Stacks sharing a broker need one each.
	Tenant string
	topics eventcatalog.Topics // of Tenant, set by Run
	// BrokerAddr and BrokerAdminAddr are where the broker listens;
	// "127.0.0.1:0" picks free ports.
	BrokerAddr, BrokerAdminAddr string
	// RelayHTTPAddr is where the relay serves /v1/lag; "127.0.0.1:0" picks a free port.
	RelayHTTPAddr string
	// WithoutRelay leaves out the relay and the services, for running a relay
	// by hand.
	WithoutRelay bool
	// OrdersAddr and PaymentsAddr are where orders and payments serve
	// their /v1/progress, /healthz, /readyz and /metrics.
	OrdersAddr, PaymentsAddr string
	// ReportingAddr is where reporting serves reports and timelines.
	ReportingAddr string
	// BFFAddr is where the bff serves the public API.
	BFFAddr string
	// WithClient also runs the fake-data client against the bff, at
	// ClientRate orders per second, until the stack stops.
	WithClient bool
	ClientRate float64
	// Out receives the summary of what runs where.
	Out io.Writer
	// Logger receives progress messages.
	Logger *slog.Logger
	// Tracing gives each component its tracer provider, with the
	// component's service.name (tracing.ServiceName: alpes-relay,
	// alpes-orders…), all exporting through it. Nil traces nothing. The
	// caller owns it: it flushes it (Shutdown) after Run returns.
	Tracing *tracing.Tracing
}

// Run starts the stack, prints where everything is, and runs until ctx ends;
// then it stops everything it started and removes its temporary files.
//
// The parts live on contexts of their own, not on ctx: when ctx ends (a
// Ctrl-C) Run stops them in the order they depend on one another, the load
// first, then the services, the relay, the broker and Postgres last, so
// that nothing is left calling a part that has gone (a Pulsar client whose
// broker has stopped retries for its operation timeout, 30 s).
func Run(ctx context.Context, cfg Config) (err error) {
	defer func() {
		if ctx.Err() != nil {
			err = nil // a Ctrl-C, even while starting: what failed was asked to stop
		}
	}()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Tenant == "" {
		cfg.Tenant = eventcatalog.DefaultTenant
	}
	if cfg.topics, err = eventcatalog.TopicsFor(cfg.Tenant); err != nil {
		return err
	}
	log.Info("starting postgres")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		BinDir: cfg.PostgresBinDir,
		Dir:    cfg.DataDir,
		Port:   cfg.PostgresPort,
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	defer func() {
		log.Info("stopping postgres")
		if err := cluster.Stop(); err != nil {
			log.Error("stopping postgres", "err", err)
		}
	}()

	if err := stack.CreateDatabases(ctx, cluster.AdminDSN, log); err != nil {
		return err
	}

	broker, err := startBroker(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := broker.stop(); err != nil {
			log.Error("stopping the broker", "err", err)
		}
	}()

	st := summary{cluster: cluster, broker: broker, urls: map[string]string{}}
	if cfg.WithoutRelay {
		// Infrastructure only: the services would write outboxes that a relay
		// started by hand could no longer create its slots over.
		printSummary(cfg.Out, st)
		<-ctx.Done()
		return nil
	}
	life := context.WithoutCancel(ctx)
	relayPart := startPart(life, "the relay")
	if st.urls[stack.Relay.Name], err = startRelay(relayPart.ctx, ctx, cluster, broker, cfg, log, relayPart.done); err != nil {
		relayPart.stop()
		return err
	}
	defer relayPart.stop()

	var res resources
	defer res.close() // after the services stopped, before the broker does
	services := startPart(life, "a service")
	g, gctx := errgroup.WithContext(services.ctx)
	if err = startServices(gctx, g, cluster, broker, cfg, log, &res, &st); err != nil {
		services.cancel()
		return errors.Join(err, g.Wait())
	}
	go func() { services.done <- g.Wait() }()
	defer services.stop()
	if ctx.Err() != nil {
		return nil // a Ctrl-C while starting
	}
	printSummary(cfg.Out, st)

	load := startPart(life, "the client")
	if cfg.WithClient {
		go func() { load.done <- runClient(load.ctx, st.urls[stack.BFF.Name], cfg, log) }()
	} else {
		load.done <- nil
	}
	defer load.stop()

	// Until Ctrl-C, or until a part fails; then the deferred stops run,
	// in the reverse order of the starts.
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case err := <-relayPart.done:
		relayPart.returned = true
		return relayPart.failure(err)
	case err := <-services.done:
		services.returned = true
		return services.failure(err)
	case err := <-load.done:
		load.returned = true
		if err == nil {
			<-ctx.Done() // no client
			return nil
		}
		return load.failure(err)
	}
}

// part is one part of the stack that runs until its context is cancelled,
// and reports on done when it has stopped.
type part struct {
	name     string
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan error
	returned bool // its result was taken from done already
}

func startPart(life context.Context, name string) *part {
	ctx, cancel := context.WithCancel(life)
	return &part{name: name, ctx: ctx, cancel: cancel, done: make(chan error, 1)}
}

// stop cancels the part and waits until it has stopped.
func (p *part) stop() {
	p.cancel()
	if !p.returned {
		<-p.done
		p.returned = true
	}
}

// failure is the error of a part that stopped by itself.
func (p *part) failure(err error) error {
	if err == nil {
		return fmt.Errorf("%s stopped", p.name)
	}
	return named(p.name, err)
}

// startRelay runs the relay for each of its sources' databases until ctx
// ends (its result goes to done) and returns the base URL of its /v1/lag once
// every source streams, so nothing a service writes can predate the slots;
// it gives up waiting for that when wait ends.
func startRelay(ctx, wait context.Context, c *pgcluster.Cluster, b *runningBroker, cfg Config, log *slog.Logger, done chan<- error) (string, error) {
	var sources []relay.SourceConfig
	for _, source := range stack.Relay.Sources {
		sources = append(sources, relay.SourceConfig{
			Name:            source,
			DSN:             c.DSN(migrations.RelayRole, source),
			ValidatePayload: eventcatalog.ValidatePayload,
			QuarantineTopic: cfg.topics.RelayQuarantine,
		})
	}
	r, err := relay.New(relay.Config{
		Sources: sources, Pulsar: relay.PulsarConfig{URL: b.serviceURL, AdminURL: b.adminURL}, Logger: log.With("component", "relay"),
		TracerProvider: cfg.Tracing.Provider(tracing.ServiceName(stack.Relay.Name)),
	})
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", cfg.RelayHTTPAddr)
	if err != nil {
		return "", fmt.Errorf("listening for the relay's HTTP: %w", err)
	}
	served := make(chan error, 1)
	go func() {
		err := r.Serve(ctx, ln)
		served <- err
		done <- err
	}()
	if err := waitStreaming(wait, r, served); err != nil {
		return "", err
	}
	return "http://" + ln.Addr().String(), nil
}

// waitStreaming waits until the relay streams every source, so that nothing a
// service writes can predate the slots.
func waitStreaming(ctx context.Context, r *relay.Relay, done <-chan error) error {
	deadline := time.After(time.Minute)
	for {
		streaming := true
		for _, l := range r.Lag() {
			streaming = streaming && l.State == relay.StateStreaming
		}
		if streaming {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("the relay stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the relay is not streaming after a minute: %+v", r.Lag())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// summary is what printSummary describes.
type summary struct {
	cluster *pgcluster.Cluster
	broker  *runningBroker
	// urls are the base URLs of the components' HTTP endpoints, by
	// component name, as they started.
	urls map[string]string
}

// url is the base URL of the component called name; "" before it started.
func (s summary) url(name string) string { return s.urls[name] }

// printSummary writes the banner in one piece, so that no log line lands
// inside it.
func printSummary(w io.Writer, s summary) {
	if w == nil {
		return
	}
	var b bytes.Buffer
	writeSummary(&b, s)
	w.Write(b.Bytes())
}

func writeSummary(w io.Writer, s summary) {
	c := s.cluster
	relayURL, ordersURL, paymentsURL := s.url(stack.Relay.Name), s.url(stack.Orders.Name), s.url(stack.Payments.Name)
	reportingURL, bffURL := s.url(stack.Reporting.Name), s.url(stack.BFF.Name)
	fmt.Fprintln(w, "alpes dev is running. Press Ctrl-C to stop and clean up.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tSERVICE LOGIN\tADMIN (superuser)")
	for _, db := range stack.Databases() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", db, c.DSN(migrations.ServiceRole(db), db), c.AdminDSN(db))
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-26s%s   admin: %s\n", s.broker.kind+":", s.broker.serviceURL, s.broker.adminURL)
	if relayURL != "" {
		fmt.Fprintf(w, "Relay lag:                %s/v1/lag   (alpes lag --url %s)\n", relayURL, relayURL)
	}
	if ordersURL != "" {
		fmt.Fprintf(w, "Orders:                   %s/v1/progress   /metrics\n", ordersURL)
		fmt.Fprintf(w, "Payments:                 %s/v1/progress   /metrics\n", paymentsURL)
	}
	if reportingURL != "" {
		fmt.Fprintf(w, "Reports:                  %s/v1/reports/orders?format=html\n", reportingURL)
	}
	if bffURL != "" {
		fmt.Fprintf(w, "Public API (bff):         %s   (OpenAPI: %s/openapi.json)\n", bffURL, bffURL)
		fmt.Fprintf(w, "Lag page (live):          %s/lag\n", bffURL)
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Try: curl -s -X POST %s/v1/orders -H 'Idempotency-Key: try-1' -H 'Content-Type: application/json' \\\n", bffURL)
		fmt.Fprintln(w, `       -d '{"customer_id":"c-1","address":"Alpenweg 1, Zermatt","items":[{"sku":"AXE-ICE-50","quantity":1}]}'`)
		fmt.Fprintf(w, "     curl -s '%s/v1/orders/<order_id>?wait=10s'\n", bffURL)
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Try: psql '%s' -c 'SELECT sku, name, price_minor FROM products'\n", c.AdminDSN(stack.Orders.Database))
}
