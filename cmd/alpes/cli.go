package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/alecthomas/kong"

	"github.com/alpes/alpes/internal/buildinfo"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/services/eventcatalog"
)

// cli is the command line of alpes. Kong gives every flag an ALPES_<FLAG>
// environment variable (kong.DefaultEnvars) and shows it in --help.
type cli struct {
	LogLevel  slog.Level `help:"Log level: debug, info, warn or error." default:"info"`
	LogFormat string     `help:"Log format: text or json." enum:"text,json" default:"text"`

	Dev       devCmd       `cmd:"" help:"Run alpes on this machine: a throwaway Postgres with a migrated database per service."`
	Broker    brokerCmd    `cmd:"" help:"Run the embedded broker that speaks the Pulsar binary protocol (development and tests)."`
	Pulsar    pulsarCmd    `cmd:"" help:"Run the real Apache Pulsar standalone on this machine, without Docker (up, down, exec)."`
	Relay     relayCmd     `cmd:"" help:"Run the relay: Postgres logical replication of the outbox to Pulsar."`
	Lag       lagCmd       `cmd:"" help:"Show a relay's replication lag per source."`
	Tail      tailCmd      `cmd:"" help:"Print the messages of a Pulsar topic as they arrive."`
	Probe     probeCmd     `cmd:"" help:"GET a URL and exit 0 only on 200 OK: the health check of the distroless image (alpes probe http://127.0.0.1:8081/readyz)."`
	BFF       bffCmd       `cmd:"" name:"bff" help:"Run the bff: the public HTTP ordering API (POST /v1/orders, GET /v1/orders/{id}?wait=…)."`
	Orders    ordersCmd    `cmd:"" help:"Run the orders service: prices PlaceOrder commands into orders and settles them on payment results."`
	Payments  paymentsCmd  `cmd:"" help:"Run the payments service: charges placed orders through the deterministic fake gateway."`
	Reporting reportingCmd `cmd:"" help:"Run the reporting service: the read model, per-order timelines and reports in several formats."`
	Client    clientCmd    `cmd:"" help:"Place fake customers' orders at the bff at a steady rate, follow them to their outcome, report latencies."`
	Chaos     chaosCmd     `cmd:"" help:"Soak the whole system under load with random faults (kills, freezes, Postgres crashes and restarts, ended sessions, network faults, instance churn, relay fail-over), then check it with the oracle."`
	Migrate   migrateCmd   `cmd:"" help:"Migrate a service's database: up (the default), down one step, or status."`
	Bench     benchCmd     `cmd:"" help:"Run the benchmark scenarios (figures A to E, the brokers) on this machine and write docs/benchmarks.md and .json."`
	Version   versionCmd   `cmd:"" help:"Print the version of this build."`
}

// defaults are the ${…} values of flag defaults that live in packages.
var defaults = kong.Vars{
	"pulsar_version": pulsarstandalone.DefaultVersion,
	"pulsar_memory":  pulsarstandalone.DefaultMemory,
	"pulsar_tenant":  eventcatalog.DefaultTenant,
	"chaos_faults":   chaosFaultNames(),
}.CloneWith(stackDefaults())

// env is what every command gets: where to write and how to log.
type env struct {
	stdout io.Writer
	log    *slog.Logger
}

// run parses args and runs the chosen command until it ends or ctx does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("alpes"),
		kong.Description("Reliable data replication between microservices: transactional outbox and Postgres CDC over Apache Pulsar."),
		kong.DefaultEnvars("ALPES"),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(stdout, stderr),
		defaults,
	)
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(helpOfDefault(args))
	if err != nil {
		return err
	}
	e := env{stdout: stdout, log: newLogger(stderr, c.LogLevel, c.LogFormat)}
	kctx.BindTo(ctx, (*context.Context)(nil))
	return kctx.Run(e)
}

// helpOfDefault turns `alpes relay --help` into `alpes relay run --help`:
// run is relay's default command, the one an operator starts, so its flags
// are what that help should show (kong's help of a command group lists
// only its subcommands). Run's help names replay.
func helpOfDefault(args []string) []string {
	i := slices.Index(args, "relay")
	if i < 0 {
		return args
	}
	rest := args[i+1:]
	if slices.Contains(rest, "run") || slices.Contains(rest, "replay") {
		return args
	}
	if slices.Contains(rest, "--help") || slices.Contains(rest, "-h") {
		return slices.Concat(args[:i+1], []string{"run"}, rest)
	}
	return args
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

type versionCmd struct{}

func (versionCmd) Run(e env) error {
	_, err := fmt.Fprintln(e.stdout, buildinfo.String())
	return err
}
