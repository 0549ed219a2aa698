package main

import (
	"context"
	"fmt"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/payments"
	"github.com/alpes/alpes/services/reporting"
)

// serviceFlags are what every service needs: its database and the broker.
type serviceFlags struct {
	DSN         string `name:"dsn" required:"" help:"The service's database, as its own login (alpes_<service>)."`
	PulsarURL   string `help:"Pulsar service URL." default:"pulsar://127.0.0.1:6650"`
	PulsarToken string `help:"Token to authenticate to Pulsar." placeholder:"TOKEN"`
}

// open connects to the database and the broker; close releases both.
func (f serviceFlags) open(ctx context.Context, e env) (db *pgxpool.Pool, client pulsar.Client, close func(), err error) {
	db, err = pgxpool.New(ctx, f.DSN)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading --dsn: %w", err)
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("connecting to the database: %w", err)
	}
	opts := pulsar.ClientOptions{URL: f.PulsarURL, Logger: pulsarslog.New(e.log)}
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

type reportingCmd struct {
	serviceFlags
	HTTPAddr string `help:"Listen address of the reports and timeline API." default:"127.0.0.1:8084"`
}

func (c *reportingCmd) Run(ctx context.Context, e env) error {
	db, client, closeAll, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := reporting.New(reporting.Config{DB: db, Pulsar: client, HTTPAddr: c.HTTPAddr, Logger: e.log})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

type ordersCmd struct{ serviceFlags }

func (c *ordersCmd) Run(ctx context.Context, e env) error {
	db, client, closeAll, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := orders.New(orders.Config{DB: db, Client: client, Logger: e.log})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

type paymentsCmd struct{ serviceFlags }

func (c *paymentsCmd) Run(ctx context.Context, e env) error {
	db, client, closeAll, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer closeAll()
	svc, err := payments.New(payments.Config{DB: db, Client: client, Logger: e.log})
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
