package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarslog"
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

// connect opens a service's pool, as its own login, and a Pulsar client.
func (r *resources) connect(ctx context.Context, c *pgcluster.Cluster, b *runningBroker, service string, log *slog.Logger) (*pgxpool.Pool, pulsar.Client, error) {
	pool, err := pgxpool.New(ctx, c.DSN(migrations.ServiceRole(service), service))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting %s to its database: %w", service, err)
	}
	r.pools = append(r.pools, pool)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.serviceURL, Logger: pulsarslog.New(log)})
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s's Pulsar client: %w", service, err)
	}
	r.clients = append(r.clients, client)
	return pool, client, nil
}

// startServices runs orders, payments, reporting and the bff in g until its
// context ends, and records their base URLs in st (whose relayURL they
// need).
func startServices(ctx context.Context, g *errgroup.Group, c *pgcluster.Cluster, b *runningBroker, cfg Config, log *slog.Logger, res *resources, st *stack) error {
	db, client, err := res.connect(ctx, c, b, "orders", log)
	if err != nil {
		return err
	}
	ord, err := orders.New(orders.Config{DB: db, Pulsar: client, Topics: cfg.topics, Logger: log})
	if err != nil {
		return err
	}
	g.Go(func() error { return named("orders", ord.Run(ctx)) })
	st.ordersURL, err = serveProgress(ctx, g, cfg.OrdersAddr, "orders", db, ord.Stats)
	if err != nil {
		return err
	}

	if db, client, err = res.connect(ctx, c, b, "payments", log); err != nil {
		return err
	}
	pay, err := payments.New(payments.Config{DB: db, Pulsar: client, Topics: cfg.topics, Logger: log})
	if err != nil {
		return err
	}
	g.Go(func() error { return named("payments", pay.Run(ctx)) })
	st.paymentsURL, err = serveProgress(ctx, g, cfg.PaymentsAddr, "payments", db, pay.Stats)
	if err != nil {
		return err
	}

	if db, client, err = res.connect(ctx, c, b, "reporting", log); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ReportingAddr)
	if err != nil {
		return fmt.Errorf("listening for reporting: %w", err)
	}
	rep, err := reporting.New(reporting.Config{DB: db, Pulsar: client, Listener: ln, Topics: cfg.topics, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	g.Go(func() error { return named("reporting", rep.Run(ctx)) })
	st.reportingURL = "http://" + ln.Addr().String()

	if db, client, err = res.connect(ctx, c, b, "bff", log); err != nil {
		return err
	}
	bffLn, err := net.Listen("tcp", cfg.BFFAddr)
	if err != nil {
		return fmt.Errorf("listening for the bff: %w", err)
	}
	front, err := bff.New(bff.Config{
		Topics: cfg.topics,
		DB:     db, Pulsar: client, Logger: log,
		ReportingURL: st.reportingURL, RelayLagURLs: []string{st.relayURL + "/v1/lag"},
		ProgressURLs: []string{st.ordersURL + "/v1/progress", st.paymentsURL + "/v1/progress", st.reportingURL + "/v1/progress"},
		// Locally every client is 127.0.0.1, the load generator included: a
		// per-client limit meant for the internet would throttle it.
		RateLimit: 5000, RateBurst: 5000,
	})
	if err != nil {
		bffLn.Close()
		return err
	}
	g.Go(func() error { return named("bff", front.Serve(ctx, bffLn)) })
	st.bffURL = "http://" + bffLn.Addr().String()
	return nil
}

// serveProgress serves a service's GET /v1/progress (and its inbox's
// /metrics) on addr, in g, and returns its base URL.
func serveProgress(ctx context.Context, g *errgroup.Group, addr, service string, db *pgxpool.Pool, stats func() inbox.Stats) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening for %s's progress: %w", service, err)
	}
	g.Go(func() error {
		return named(service+"'s progress endpoint", inbox.ServeProgress(ctx, ln, service, db, stats))
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
