// Package procstack runs the whole of alpes as separate processes on one
// machine: a throwaway Postgres cluster with a migrated database per service,
// then the broker, the relay, orders, payments, reporting and the bff, each
// a child process of the alpes binary on its own loopback ports.
//
// It is what the benchmarks (`alpes bench`) and the chaos soak (`alpes
// chaos`) stand on: a component in its own process can be killed with
// SIGKILL, frozen with SIGSTOP, restarted on the same addresses, and its
// memory and CPU measured on their own. `alpes dev` runs the same components
// in one process instead (internal/devstack).
package procstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alpes/alpes/internal/devstack"
	"github.com/alpes/alpes/internal/eventcatalog"
	"github.com/alpes/alpes/internal/oracle"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/migrations"
)

// Options configures a stack.
type Options struct {
	// Binary is the alpes executable to run; empty means this process's own
	// executable, which is right inside the alpes command.
	Binary string
	// Dir receives the Postgres cluster, the broker's data and one log file per
	// component. Empty means a new temporary directory, removed by Close.
	Dir string
	// Durable runs Postgres with fsync on and the broker with a data
	// directory, so that a killed broker keeps what it receipted. Figures that
	// are published are measured durable.
	Durable bool
	// PostgresSettings are extra postgresql.conf settings.
	PostgresSettings map[string]string
	// Env adds environment variables (NAME=value) to one component's process,
	// by component name (see Stack.Procs), e.g. failpoints for the relay.
	Env map[string][]string
	// Args adds flags to one component's command line, by component name,
	// e.g. {"relay": {"--max-in-flight", "500"}}.
	Args map[string][]string
	// Pulsar is what runs as the broker process: devstack.PulsarEmbedded
	// (or empty) runs `alpes broker`; devstack.PulsarReal runs Apache Pulsar
	// standalone from PulsarDistribution, killed, frozen and restarted like
	// any other component, its data kept across restarts.
	Pulsar             string
	PulsarDistribution pulsarstandalone.Distribution
	// PulsarURL and PulsarAdminURL name a broker the stack does not own, such
	// as the real Pulsar shared by a test pass: no broker process runs,
	// Stack.Broker is nil, and nothing can kill or freeze it.
	PulsarURL, PulsarAdminURL string
	// Tenant of the stack's topics; empty means eventcatalog.DefaultTenant.
	// Stacks that share a broker need one each.
	Tenant string
	// LogLevel of every component: debug, info, warn or error. Default info.
	LogLevel string
	// Logger receives the stack's own progress messages.
	Logger *slog.Logger
}

// Stack is a running system. Close stops it.
type Stack struct {
	Cluster *pgcluster.Cluster

	// Broker is nil when the stack uses a broker it does not own
	// (Options.PulsarURL).
	Broker, Relay, Orders, Payments, Reporting, BFF *Proc

	// BrokerURL is the Pulsar service URL; BrokerAdminURL the admin API's.
	BrokerURL, BrokerAdminURL string
	// Topics are the services' topics: the default tenant's, on the stack's
	// own broker.
	Topics eventcatalog.Topics
	// RelayURL, ReportingURL and BFFURL are base URLs (http://host:port).
	RelayURL, ReportingURL, BFFURL string
	// ProgressURLs are the consumers' GET /v1/progress endpoints, by service.
	ProgressURLs map[string]string

	dir     string
	ownsDir bool
	log     *slog.Logger
}

// Start brings the system up in dependency order, each component ready
// before the next starts: Postgres and the migrations, the broker (holding
// the tenant's namespaces, deduplication on), the relay (streaming every
// source before anything writes to an outbox), then the consumers and the
// bff. On error it stops whatever it started.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{dir: opts.Dir, log: opts.Logger, Topics: eventcatalog.DefaultTopics()}
	if opts.Tenant != "" {
		if s.Topics, err = eventcatalog.TopicsFor(opts.Tenant); err != nil {
			return nil, err
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "alpes-procstack-"); err != nil {
			return nil, err
		}
		s.ownsDir = true
		// Postgres runs as its own OS user when we are root: it must be able
		// to reach its directory inside ours.
		if err := os.Chmod(s.dir, 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	binary := opts.Binary
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the alpes binary: %w", err)
		}
	}

	s.log.Info("starting postgres", "durable", opts.Durable)
	s.Cluster, err = pgcluster.Start(ctx, pgcluster.Options{
		Dir: filepath.Join(s.dir, "postgres"), Durable: opts.Durable, Settings: opts.PostgresSettings, Logger: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	for _, service := range migrations.Services {
		if err := devstack.CreateAndMigrate(ctx, s.Cluster, service, s.log); err != nil {
			return nil, err
		}
	}

	addr, err := freeAddrs(7)
	if err != nil {
		return nil, err
	}
	brokerAddr, brokerAdmin, relayHTTP, ordersHTTP, paymentsHTTP, reportingHTTP, bffHTTP :=
		addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6]
	s.BrokerURL, s.BrokerAdminURL = "pulsar://"+brokerAddr, "http://"+brokerAdmin
	if opts.PulsarURL != "" {
		s.BrokerURL, s.BrokerAdminURL = opts.PulsarURL, opts.PulsarAdminURL
	}
	s.RelayURL, s.ReportingURL, s.BFFURL = "http://"+relayHTTP, "http://"+reportingHTTP, "http://"+bffHTTP
	s.ProgressURLs = map[string]string{
		"orders":    "http://" + ordersHTTP + "/v1/progress",
		"payments":  "http://" + paymentsHTTP + "/v1/progress",
		"reporting": s.ReportingURL + "/v1/progress",
	}

	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	proc := func(name string, ready func(context.Context) error, args ...string) *Proc {
		return &Proc{
			Name: name, binary: binary, env: opts.Env[name], ready: ready,
			args:    append(append([]string{"--log-level", level}, args...), opts.Args[name]...),
			logPath: filepath.Join(s.dir, name+".log"),
		}
	}
	// The tenant is given, not left to the default: a child inherits this
	// process's environment, ALPES_PULSAR_TENANT included.
	service := func(name string) []string {
		return []string{name, "--dsn", s.Cluster.DSN(migrations.ServiceRole(name), name),
			"--pulsar-url", s.BrokerURL, "--pulsar-tenant", s.Topics.Tenant}
	}

	switch {
	case opts.PulsarURL != "":
		// Not ours to run; provisioned before anything publishes.
		if err := provisioned(s.BrokerURL, s.BrokerAdminURL, s.Topics.Tenant, func(context.Context) error { return nil })(ctx); err != nil {
			return nil, err
		}
	case opts.Pulsar == devstack.PulsarReal:
		if s.Broker, err = realPulsar(s, opts.PulsarDistribution, brokerAddr, brokerAdmin); err != nil {
			return nil, err
		}
	case opts.Pulsar == "" || opts.Pulsar == devstack.PulsarEmbedded:
		brokerArgs := []string{"broker", "--addr", brokerAddr, "--admin-addr", brokerAdmin}
		if opts.Durable {
			brokerArgs = append(brokerArgs, "--data", filepath.Join(s.dir, "broker"))
		}
		s.Broker = proc("broker", provisioned(s.BrokerURL, s.BrokerAdminURL, s.Topics.Tenant, dialable(brokerAddr, brokerAdmin)), brokerArgs...)
	default:
		return nil, fmt.Errorf("unknown broker %q", opts.Pulsar)
	}

	relayArgs := []string{"relay", "--pulsar-url", s.BrokerURL, "--pulsar-admin-url", s.BrokerAdminURL,
		"--pulsar-tenant", s.Topics.Tenant, "--http-addr", relayHTTP}
	for _, source := range migrations.Producers {
		relayArgs = append(relayArgs, "--source", source+"="+s.Cluster.DSN(migrations.RelayRole, source))
	}
	s.Relay = proc("relay", httpOK(s.RelayURL+"/readyz"), relayArgs...)

	s.Orders = proc("orders", httpOK("http://"+ordersHTTP+"/healthz"), append(service("orders"), "--http-addr", ordersHTTP)...)
	s.Payments = proc("payments", httpOK("http://"+paymentsHTTP+"/healthz"), append(service("payments"), "--http-addr", paymentsHTTP)...)
	s.Reporting = proc("reporting", httpOK(s.ReportingURL+"/readyz"), append(service("reporting"), "--http-addr", reportingHTTP)...)

	bffArgs := append(service("bff"), "--http-addr", bffHTTP, "--reporting-url", s.ReportingURL,
		"--relay-lag-url", s.RelayURL+"/v1/lag",
		// Every client here is 127.0.0.1, the load generator included: a
		// per-client limit meant for the internet would throttle it.
		"--rate-limit", "100000", "--rate-burst", "100000")
	for _, name := range []string{"orders", "payments", "reporting"} {
		bffArgs = append(bffArgs, "--progress-url", s.ProgressURLs[name])
	}
	s.BFF = proc("bff", httpOK(s.BFFURL+"/openapi.json"), bffArgs...)

	for _, p := range s.Procs() {
		s.log.Info("starting", "component", p.Name, "log", p.logPath)
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Procs are the components in start order: broker (unless the stack uses
// one it does not own), relay, orders, payments, reporting, bff.
func (s *Stack) Procs() []*Proc {
	procs := []*Proc{s.Broker, s.Relay, s.Orders, s.Payments, s.Reporting, s.BFF}
	if s.Broker == nil {
		procs = procs[1:]
	}
	return procs
}

// Dir is where the stack keeps its data and logs.
func (s *Stack) Dir() string { return s.dir }

// Close stops the components in reverse start order (SIGTERM, then SIGKILL
// after a grace period), then Postgres, and removes the directory if Start
// created it.
func (s *Stack) Close() error {
	var errs []error
	procs := s.Procs()
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i] != nil {
			errs = append(errs, procs[i].Terminate(10*time.Second))
		}
	}
	if s.Cluster != nil {
		errs = append(errs, s.Cluster.Stop())
	}
	if s.ownsDir {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// freeAddrs reserves n distinct loopback ports and releases them for the
// children to bind; they stay fixed for the stack's life so restarted
// components come back where their peers expect them.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return addrs, nil
}

// dialable is ready when every address accepts a TCP connection.
func dialable(addrs ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, a := range addrs {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", a)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}
}

// provisioned is ready when up is and the broker at adminURL holds tenant's
// namespaces with deduplication on, which it creates (the Ensure
// calls are idempotent): brokers refuse topics of namespaces nobody
// created; and the oracle's retaining subscription on each of the tenant's
// topics (oracle.Retain), so that the broker keeps every message for the
// oracle to read back. Checked on every start, it provisions a restarted
// broker that kept nothing, too.
func provisioned(brokerURL, adminURL, tenant string, up func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := up(ctx); err != nil {
			return err
		}
		if err := devstack.EnsureNamespaces(ctx, adminURL, tenant); err != nil {
			return fmt.Errorf("provisioning the broker: %w", err)
		}
		topics, err := eventcatalog.TopicsFor(tenant)
		if err != nil {
			return err
		}
		// The oracle judges what the broker holds: keep all of it.
		return oracle.Retain(ctx, brokerURL, topics, nil)
	}
}

// httpOK is ready when GET url answers 200.
func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// realPulsar is Apache Pulsar standalone as the stack's broker process, on
// the stack's broker addresses, its files under the stack's directory. Its
// configuration is written once; a restart after a kill recovers its data.
func realPulsar(s *Stack, dist pulsarstandalone.Distribution, serviceAddr, adminAddr string) (*Proc, error) {
	ports := make([]int, 2)
	for i, a := range []string{serviceAddr, adminAddr} {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			return nil, err
		}
		if ports[i], err = strconv.Atoi(p); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(s.dir, "pulsar")
	cmd, err := pulsarstandalone.Prepare(pulsarstandalone.Config{
		Distribution: dist, Dir: dir, ServicePort: ports[0], AdminPort: ports[1],
	})
	if err != nil {
		return nil, err
	}
	up := func(ctx context.Context) error { return pulsarstandalone.WaitReady(ctx, cmd.ServiceURL, cmd.AdminURL) }
	return &Proc{
		Name: "broker", binary: cmd.Path, args: cmd.Args, env: cmd.Env,
		ready:   provisioned(cmd.ServiceURL, cmd.AdminURL, s.Topics.Tenant, up),
		logPath: filepath.Join(s.dir, "broker.log"),
	}, nil
}
