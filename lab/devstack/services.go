package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/lab/stack"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/bff"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/payments"
	"github.com/alpes/alpes/services/reporting"
)

// resources collects what the services hold, to release after they stop.
type resources struct {
	pools   []*pgxpool.Pool
	clients []pulsar.Client
}

func (r *resources) close() {
	for _, c := range r.clients {
		c.Close()
	}
	for _, p := range r.pools {
		p.Close()
	}
}

// connect opens a pool on the database a service owns, as the service's
// own login, and a Pulsar client registering its metrics in reg, the
// service's registry.
func (r *resources) connect(ctx context.Context, c *pgcluster.Cluster, b *runningBroker, database string, log *slog.Logger, reg prometheus.Registerer) (*pgxpool.Pool, pulsar.Client, error) {
	pool, err := pgxpool.New(ctx, c.DSN(migrations.ServiceRole(database), database))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting %s to its database: %w", database, err)
	}
	r.pools = append(r.pools, pool)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.serviceURL, Logger: pulsarslog.New(log), MetricsRegisterer: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s's Pulsar client: %w", database, err)
	}
	r.clients = append(r.clients, client)
	return pool, client, nil
}

// startServices runs orders, payments, reporting and the bff in g until its
// context ends, and records their base URLs in st (whose relay's URL they
// need). Each connects to its own database as its own login; the bff's
// links to its peers are the description's (stack.BFF.Links). Each has a
// metrics registry of its own, as it would as a process.
func startServices(ctx context.Context, g *errgroup.Group, c *pgcluster.Cluster, b *runningBroker, cfg Config, log *slog.Logger, res *resources, st *summary) error {
	reg := metrics.NewRegistry()
	db, client, err := res.connect(ctx, c, b, stack.Orders.Database, log, reg)
	if err != nil {
		return err
	}
	ord, err := orders.New(orders.Config{
		DB: db, Pulsar: client, Topics: cfg.topics, Logger: log, Metrics: reg,
		TracerProvider: cfg.Tracing.Provider(tracing.ServiceName(stack.Orders.Name)),
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return named(stack.Orders.Name, ord.Run(ctx)) })
	st.urls[stack.Orders.Name], err = serveProgress(ctx, g, cfg.OrdersAddr, stack.Orders.Name, db, ord.Ready, reg)
	if err != nil {
		return err
	}

	reg = metrics.NewRegistry()
	if db, client, err = res.connect(ctx, c, b, stack.Payments.Database, log, reg); err != nil {
		return err
	}
	pay, err := payments.New(payments.Config{
		DB: db, Pulsar: client, Topics: cfg.topics, Logger: log, Metrics: reg,
		TracerProvider: cfg.Tracing.Provider(tracing.ServiceName(stack.Payments.Name)),
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return named(stack.Payments.Name, pay.Run(ctx)) })
	st.urls[stack.Payments.Name], err = serveProgress(ctx, g, cfg.PaymentsAddr, stack.Payments.Name, db, pay.Ready, reg)
	if err != nil {
		return err
	}

	reg = metrics.NewRegistry()
	if db, client, err = res.connect(ctx, c, b, stack.Reporting.Database, log, reg); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ReportingAddr)
	if err != nil {
		return fmt.Errorf("listening for reporting: %w", err)
	}
	rep, err := reporting.New(reporting.Config{
		DB: db, Pulsar: client, Listener: ln, Topics: cfg.topics, Logger: log, Metrics: reg,
		TracerProvider: cfg.Tracing.Provider(tracing.ServiceName(stack.Reporting.Name)),
	})
	if err != nil {
		ln.Close()
		return err
	}
	g.Go(func() error { return named(stack.Reporting.Name, rep.Run(ctx)) })
	st.urls[stack.Reporting.Name] = "http://" + ln.Addr().String()

	reg = metrics.NewRegistry()
	if db, client, err = res.connect(ctx, c, b, stack.BFF.Database, log, reg); err != nil {
		return err
	}
	bffLn, err := net.Listen("tcp", cfg.BFFAddr)
	if err != nil {
		return fmt.Errorf("listening for the bff: %w", err)
	}
	front, err := bff.New(bff.Config{
		Topics: cfg.topics,
		DB:     db, Pulsar: client, Logger: log,
		ReportingURL: stack.BFF.LinkURLs(stack.FlagReportingURL, st.url)[0],
		RelayLagURLs: stack.BFF.LinkURLs(stack.FlagRelayLagURL, st.url),
		ProgressURLs: stack.BFF.LinkURLs(stack.FlagProgressURL, st.url),
		// Locally every client is 127.0.0.1, the load generator included: a
		// per-client limit meant for the internet would throttle it.
		RateLimit: 5000, RateBurst: 5000,
		Metrics:        reg,
		TracerProvider: cfg.Tracing.Provider(tracing.ServiceName(stack.BFF.Name)),
	})
	if err != nil {
		bffLn.Close()
		return err
	}
	g.Go(func() error { return named(stack.BFF.Name, front.Serve(ctx, bffLn)) })
	st.urls[stack.BFF.Name] = "http://" + bffLn.Addr().String()
	return nil
}

// serveProgress serves a service's GET /v1/progress, /healthz, /readyz
// (ready) and /metrics (reg) on addr, in g, and returns its base URL.
func serveProgress(ctx context.Context, g *errgroup.Group, addr, service string, db *pgxpool.Pool, ready func(context.Context) error, reg *prometheus.Registry) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening for %s's progress: %w", service, err)
	}
	g.Go(func() error {
		return named(service+"'s progress endpoint", inbox.ServeProgress(ctx, ln, service, db, ready, reg))
	})
	return "http://" + ln.Addr().String(), nil
}

func named(service string, err error) error {
	if err == nil || ctxErr(err) {
		return nil
	}
	return fmt.Errorf("%s stopped: %w", service, err)
}

func ctxErr(err error) bool {
	return err == context.Canceled || err == context.DeadlineExceeded
}
