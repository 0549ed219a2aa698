package main

import (
	"context"

	"github.com/alpes/alpes/lab/devstack"
)

type devCmd struct {
	PostgresPort   int     `help:"Port of the throwaway Postgres cluster on 127.0.0.1 (0 picks a free one)." default:"55432"`
	PostgresBinDir string  `help:"Directory of initdb and postgres; found on PATH or in /usr/lib/postgresql/*/bin when empty."`
	DataDir        string  `help:"Keep the cluster's files here instead of a temporary directory removed on exit."`
	Pulsar         string  `help:"The broker to run: embedded (alpes's own, in this process) or real (Apache Pulsar standalone from its distribution, fetched once with Maven; needs Java 17+)." enum:"embedded,real" default:"embedded"`
	PulsarURL      string  `help:"Use the Pulsar already running here instead of starting one (with --pulsar-admin-url)." placeholder:"pulsar://HOST:PORT"`
	PulsarAdminURL string  `help:"Admin API of the Pulsar named by --pulsar-url." placeholder:"http://HOST:PORT"`
	BrokerAddr     string  `help:"Listen address of the broker's binary protocol." default:"${broker_addr}"`
	BrokerAdmin    string  `help:"Listen address of the broker's admin API." default:"${broker_admin_addr}"`
	RelayHTTPAddr  string  `help:"Listen address of the relay's /v1/lag." default:"${relay_addr}"`
	Relay          bool    `help:"Run the relay and the services (--no-relay: Postgres and the broker only, to run a relay by hand)." default:"true" negatable:""`
	OrdersAddr     string  `help:"Listen address of orders' /v1/progress and /metrics." default:"${orders_addr}"`
	PaymentsAddr   string  `help:"Listen address of payments' /v1/progress and /metrics." default:"${payments_addr}"`
	ReportingAddr  string  `help:"Listen address of the reporting service." default:"${reporting_addr}"`
	BFFAddr        string  `name:"bff-addr" help:"Listen address of the bff, the public API." default:"${bff_addr}"`
	WithClient     bool    `help:"Also run the fake-data client against the bff."`
	ClientRate     float64 `help:"Orders per second of the fake-data client." default:"5"`
}

func (d *devCmd) Run(ctx context.Context, e env) error {
	t, stopTracing, err := startTracing(ctx, e)
	if err != nil {
		return err
	}
	defer stopTracing()
	return devstack.Run(ctx, devstack.Config{
		Tracing:         t,
		PostgresPort:    d.PostgresPort,
		PostgresBinDir:  d.PostgresBinDir,
		DataDir:         d.DataDir,
		Pulsar:          d.Pulsar,
		PulsarURL:       d.PulsarURL,
		PulsarAdminURL:  d.PulsarAdminURL,
		BrokerAddr:      d.BrokerAddr,
		BrokerAdminAddr: d.BrokerAdmin,
		RelayHTTPAddr:   d.RelayHTTPAddr,
		WithoutRelay:    !d.Relay,
		OrdersAddr:      d.OrdersAddr,
		PaymentsAddr:    d.PaymentsAddr,
		ReportingAddr:   d.ReportingAddr,
		BFFAddr:         d.BFFAddr,
		WithClient:      d.WithClient,
		ClientRate:      d.ClientRate,
		Out:             e.stdout,
		Logger:          e.log,
	})
}
