package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/internal/failpoint"
	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/bff"
	"github.com/alpes/alpes/services/eventcatalog"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/payments"
	"github.com/alpes/alpes/services/reporting"
)

// serviceFlags are what every service needs: its database, the broker, and
// the deployment's tenant on it.
type serviceFlags struct {
	DSN          string `name:"dsn" required:"" help:"The service's database, as its own login (alpes_<service>)."`
	PulsarURL    string `help:"Pulsar service URL." default:"${pulsar_url}"`
	PulsarToken  string `help:"Token to authenticate to Pulsar." placeholder:"TOKEN"`
	PulsarTenant string `help:"Pulsar tenant of this deployment's topics (persistent://TENANT/orders/events.v1, …); every service of a deployment names the same." default:"${pulsar_tenant}"`
	DBMaxConns   int32  `name:"db-max-conns" help:"Most connections to the database; 0 is pgx's default, the larger of 4 and the number of CPUs."`
	Failpoints   string `hidden:"" help:"Fault tests only: crash at the inbox's named points, e.g. inbox/after-commit=crash@5."`

	InboxRetention      time.Duration `help:"How long the inbox keeps applied event ids; a message delivered again after that is applied again. At least 48h, and longer than the relays' --outbox-retention plus the longest consumer backlog (docs/adr/0005)." default:"168h"`
	InboxSweepInterval  time.Duration `hidden:"" help:"How often the inbox sweep runs; negative never sweeps." default:"1m"`
	InboxShortRetention bool          `hidden:"" help:"Soak and fault tests only: allow an --inbox-retention under 48h."`
}

// sweep is the inbox sweep of --inbox-retention and its hidden companions.
func (f serviceFlags) sweep() inbox.Sweep {
	return inbox.Sweep{Retention: f.InboxRetention, Interval: f.InboxSweepInterval, AllowShortRetention: f.InboxShortRetention}
}

// topics are the deployment's topics, of --pulsar-tenant.
func (f serviceFlags) topics() (eventcatalog.Topics, error) {
	t, err := eventcatalog.TopicsFor(f.PulsarTenant)
	if err != nil {
		return eventcatalog.Topics{}, fmt.Errorf("--pulsar-tenant: %w", err)
	}
	return t, nil
}

// failpoints parses --failpoints.
func (f serviceFlags) failpoints() (*failpoint.Set, error) {
	fp, err := failpoint.Parse(f.Failpoints)
	if err != nil {
		return nil, fmt.Errorf("--failpoints: %w", err)
	}
	return fp, nil
}

// open connects to the database and the broker, whose client registers its
// metrics in reg; close releases both.
func (f serviceFlags) open(ctx context.Context, e env, reg prometheus.Registerer) (db *pgxpool.Pool, client pulsar.Client, close func(), err error) {
	cfg, err := pgxpool.ParseConfig(f.DSN)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading --dsn: %w", err)
	}
	if f.DBMaxConns > 0 {
		cfg.MaxConns = f.DBMaxConns
	}
	db, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connecting to the database: %w", err)
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("connecting to the database: %w", err)
	}
	opts := pulsar.ClientOptions{URL: f.PulsarURL, Logger: pulsarslog.New(e.log), MetricsRegisterer: reg}
	if f.PulsarToken != "" {
		opts.Authentication = pulsar.NewAuthenticationToken(f.PulsarToken)
	}
	client, err = pulsar.NewClient(opts)
	if err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("creating the Pulsar client: %w", err)
	}
	return db, client, func() { client.Close(); db.Close() }, nil
}

// deps are what the flags give every service: its topics, its database,
// the broker, its consumer's settings, the process's metrics registry
// (internal/metrics), in which the Pulsar client registers its own, and its
// tracer provider (OTEL_* environment, see startTracing).
type deps struct {
	topics   eventcatalog.Topics
	db       *pgxpool.Pool
	pulsar   pulsar.Client
	consumer inbox.Config
	metrics  *prometheus.Registry
	tracer   trace.TracerProvider
}

// connect reads the flags and the OTEL_* environment and opens the database
// and the broker for component (orders, payments, reporting, bff); close
// releases both and flushes the traces.
func (f serviceFlags) connect(ctx context.Context, e env, component string) (d deps, close func(), err error) {
	if d.topics, err = f.topics(); err != nil {
		return d, nil, err
	}
	fp, err := f.failpoints()
	if err != nil {
		return d, nil, err
	}
	d.consumer = inbox.Config{Failpoints: fp, Sweep: f.sweep()}
	d.metrics = metrics.NewRegistry()
	tp, stopTracing, err := componentTracing(ctx, e, component)
	if err != nil {
		return d, nil, err
	}
	d.tracer = tp
	d.db, d.pulsar, close, err = f.open(ctx, e, d.metrics)
	if err != nil {
		stopTracing()
		return d, nil, err
	}
	closeAll := func() { close(); stopTracing() }
	return d, closeAll, nil
}

type reportingCmd struct {
	serviceFlags
	HTTPAddr string `help:"Listen address of the reports and timeline API." default:"${reporting_addr}"`
}

func (c *reportingCmd) Run(ctx context.Context, e env) error {
	d, closeAll, err := c.connect(ctx, e, "reporting")
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := reporting.New(reporting.Config{
		DB: d.db, Pulsar: d.pulsar, Topics: d.topics, HTTPAddr: c.HTTPAddr, Logger: e.log, Consumer: d.consumer, Metrics: d.metrics,
		TracerProvider: d.tracer,
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

type ordersCmd struct {
	serviceFlags
	HTTPAddr string `help:"Listen address of /v1/progress, /healthz, /readyz and /metrics." default:"${orders_addr}"`
}

func (c *ordersCmd) Run(ctx context.Context, e env) error {
	d, closeAll, err := c.connect(ctx, e, "orders")
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := orders.New(orders.Config{
		DB: d.db, Pulsar: d.pulsar, Topics: d.topics, Logger: e.log, Consumer: d.consumer, Metrics: d.metrics, TracerProvider: d.tracer,
	})
	if err != nil {
		return err
	}
	return withProgress(ctx, c.HTTPAddr, "orders", d.db, svc, d.metrics)
}

type paymentsCmd struct {
	serviceFlags
	HTTPAddr string `help:"Listen address of /v1/progress, /healthz, /readyz and /metrics." default:"${payments_addr}"`
}

func (c *paymentsCmd) Run(ctx context.Context, e env) error {
	d, closeAll, err := c.connect(ctx, e, "payments")
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := payments.New(payments.Config{
		DB: d.db, Pulsar: d.pulsar, Topics: d.topics, Logger: e.log, Consumer: d.consumer, Metrics: d.metrics, TracerProvider: d.tracer,
	})
	if err != nil {
		return err
	}
	return withProgress(ctx, c.HTTPAddr, "payments", d.db, svc, d.metrics)
}

// consumingService is a service without an HTTP server of its own: orders
// or payments.
type consumingService interface {
	Run(context.Context) error
	Ready(context.Context) error
}

// withProgress runs svc beside an HTTP server of its /v1/progress, /healthz,
// /readyz (svc.Ready) and /metrics (reg), until either stops.
func withProgress(ctx context.Context, addr, service string, db *pgxpool.Pool, svc consumingService, reg *prometheus.Registry) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for /v1/progress: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return inbox.ServeProgress(gctx, ln, service, db, svc.Ready, reg) })
	g.Go(func() error {
		err := svc.Run(gctx)
		if err == nil && ctx.Err() == nil {
			err = fmt.Errorf("%s stopped", service)
		}
		return err
	})
	return g.Wait()
}

type bffCmd struct {
	serviceFlags
	HTTPAddr     string   `help:"Listen address of the public HTTP API." default:"${bff_addr}"`
	ReportingURL string   `help:"Base URL of the reporting service, for timelines and reports." default:"${bff_reporting_url}"`
	RelayLagURL  []string `help:"A relay's lag endpoint, for GET /v1/replication; repeat for several." default:"${bff_relay_lag_urls}"`
	RelayToken   string   `help:"Bearer token of the relays' /v1/lag." placeholder:"TOKEN"`
	ProgressURL  []string `help:"Another service's /v1/progress, for GET /v1/replication; repeat for several." default:"${bff_progress_urls}"`
	RateLimit    float64  `help:"Requests per second allowed to one client." default:"50"`
	RateBurst    int      `help:"Burst of requests allowed to one client." default:"100"`
}

func (c *bffCmd) Run(ctx context.Context, e env) error {
	d, closeAll, err := c.connect(ctx, e, "bff")
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := bff.New(bff.Config{
		HTTPAddr: c.HTTPAddr, DB: d.db, Pulsar: d.pulsar, Topics: d.topics, Logger: e.log, Consumer: d.consumer,
		ReportingURL: c.ReportingURL, RelayLagURLs: c.RelayLagURL, RelayToken: c.RelayToken, ProgressURLs: c.ProgressURL,
		RateLimit: c.RateLimit, RateBurst: c.RateBurst, Metrics: d.metrics, TracerProvider: d.tracer,
	})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
