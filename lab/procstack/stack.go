// Package procstack runs the whole of alpes as separate processes on one
// machine: a throwaway Postgres cluster with a migrated database per service,
// then the broker, the relay, orders, payments, reporting and the bff, each
// a child process of the alpes binary on its own loopback ports.
//
// It is what the benchmarks (`alpes bench`) and the chaos soak (`alpes
// chaos`) stand on: a component in its own process can be killed with
// SIGKILL, frozen with SIGSTOP, restarted on the same addresses, and its
// memory and CPU measured on their own. `alpes dev` runs the same components
// in one process instead (lab/devstack). Both run what lab/stack describes:
// here each process's command line is the description's at the stack's
// addresses, followed by the stack's own flags.
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
	"slices"
	"strconv"
	"time"

	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/stack"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/services/eventcatalog"
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
	// FaultProxies puts a fault proxy (internal/faultproxy) on every
	// component's way to Postgres and to the broker: Stack.PostgresLink
	// and Stack.BrokerLink, whose modes the caller switches. The stack's own
	// connections and the oracle's (Cluster.AdminDSN, BrokerURL) go direct.
	FaultProxies bool
	// Instances is how many processes of orders and of payments run, all on
	// the service's one Key_Shared subscription: the first is named after
	// the service, the next orders-2, payments-2 and so on. Default 1.
	Instances int
	// RelayStandby runs a second relay, relay-2, on the same sources: it
	// waits on each source's advisory lock and streams when the relay
	// holding it dies.
	RelayStandby bool
	// Sweeps, when set, runs the relay's outbox sweep and every consumer's
	// inbox sweep with its retentions, which may be far shorter than
	// production allows, so that a soak exercises them.
	Sweeps *Sweeps
	// Logger receives the stack's own progress messages.
	Logger *slog.Logger
}

// Stack is a running system. Close stops it.
type Stack struct {
	Cluster *pgcluster.Cluster

	// Broker is nil when the stack uses a broker it does not own
	// (Options.PulsarURL). Orders and Payments are the first instance of
	// each; Replicas the others (Options.Instances). Standby is the second
	// relay, nil without Options.RelayStandby.
	Broker, Relay, Orders, Payments, Reporting, BFF *Proc
	Standby                                         *Proc
	Replicas                                        []*Proc

	// PostgresLink and BrokerLink are the fault proxies between the
	// components and Postgres and the broker; nil without
	// Options.FaultProxies.
	PostgresLink, BrokerLink *faultproxy.Proxy

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
	if err := stack.CreateDatabases(ctx, s.Cluster.AdminDSN, s.log); err != nil {
		return nil, err
	}

	// Further instances: the standby relay and orders' and payments' extra ones.
	places, err := place(1 + 2*(max(opts.Instances, 1)-1))
	if err != nil {
		return nil, err
	}
	placed, url, take := places.components, places.url, places.spare
	brokerAt := placed[stack.Broker.Name]
	s.BrokerURL, s.BrokerAdminURL = "pulsar://"+brokerAt.Addr, "http://"+brokerAt.AdminAddr
	if opts.PulsarURL != "" {
		s.BrokerURL, s.BrokerAdminURL = opts.PulsarURL, opts.PulsarAdminURL
	}
	s.RelayURL, s.ReportingURL, s.BFFURL = url(stack.Relay.Name), url(stack.Reporting.Name), url(stack.BFF.Name)
	s.ProgressURLs = map[string]string{}
	for _, l := range stack.BFF.Links {
		if l.Flag == stack.FlagProgressURL {
			s.ProgressURLs[l.Peer] = url(l.Peer) + l.Path
		}
	}
	// What the components dial: the servers, or the fault proxies before them.
	pgAddr, brokerURL := s.Cluster.Addr(), s.BrokerURL
	if opts.FaultProxies {
		if pgAddr, brokerURL, err = s.startLinks(); err != nil {
			return nil, err
		}
	}
	site := stack.Site{
		PulsarURL: brokerURL,
		DSN:       func(role, database string) string { return s.Cluster.DSNVia(pgAddr, role, database) },
		URL:       url,
	}

	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	proc := func(name, url string, ready func(context.Context) error, args ...string) *Proc {
		return &Proc{
			Name: name, URL: url, binary: binary, env: opts.Env[name], ready: ready,
			args:    slices.Concat([]string{"--log-level", level}, args, opts.Args[name]),
			logPath: filepath.Join(s.dir, name+".log"),
		}
	}
	// An instance of a component, as the process name: the description's
	// command line at this site, then this stack's own flags; ready when
	// its readiness path answers.
	launch := func(name string, c stack.Component, extra ...string) *Proc {
		base := "http://" + c.Addr
		args := slices.Concat([]string{c.Name}, stack.Args(c.Flags(site)), extra)
		return proc(name, base, httpOK(base+c.Ready), args...)
	}

	switch {
	case opts.PulsarURL != "":
		// Not ours to run; provisioned before anything publishes.
		if err := provisioned(s.BrokerURL, s.BrokerAdminURL, s.Topics.Tenant, func(context.Context) error { return nil })(ctx); err != nil {
			return nil, err
		}
	case opts.Pulsar == devstack.PulsarReal:
		if s.Broker, err = realPulsar(s, opts.PulsarDistribution, brokerAt.Addr, brokerAt.AdminAddr); err != nil {
			return nil, err
		}
	case opts.Pulsar == "" || opts.Pulsar == devstack.PulsarEmbedded:
		brokerArgs := slices.Concat([]string{brokerAt.Name}, stack.Args(brokerAt.Flags(site)))
		if opts.Durable {
			brokerArgs = append(brokerArgs, "--data", filepath.Join(s.dir, "broker"))
		}
		s.Broker = proc(brokerAt.Name, s.BrokerAdminURL, provisioned(s.BrokerURL, s.BrokerAdminURL, s.Topics.Tenant, dialable(brokerAt.Addr, brokerAt.AdminAddr)), brokerArgs...)
	default:
		return nil, fmt.Errorf("unknown broker %q", opts.Pulsar)
	}

	// The tenant is given, not left to the default: a child inherits this
	// process's environment, ALPES_PULSAR_TENANT included. The relay is
	// ready when every source streams or waits on its lock as a standby.
	relayArgs := slices.Concat([]string{"--pulsar-admin-url", s.BrokerAdminURL, "--pulsar-tenant", s.Topics.Tenant}, opts.Sweeps.relayArgs())
	s.Relay = launch(stack.Relay.Name, placed[stack.Relay.Name], relayArgs...)
	var standbyLag []string
	if opts.RelayStandby {
		s.Standby = launch(stack.Relay.Name+"-2", stack.Relay.At(take(), ""), relayArgs...)
		standby := func(string) string { return s.Standby.URL }
		for _, u := range stack.BFF.LinkURLs(stack.FlagRelayLagURL, standby) {
			standbyLag = append(standbyLag, "--"+stack.FlagRelayLagURL, u)
		}
	}

	serviceArgs := slices.Concat([]string{"--pulsar-tenant", s.Topics.Tenant}, opts.Sweeps.serviceArgs())
	s.Orders = launch(stack.Orders.Name, placed[stack.Orders.Name], serviceArgs...)
	s.Payments = launch(stack.Payments.Name, placed[stack.Payments.Name], serviceArgs...)
	for i := 2; i <= opts.Instances; i++ {
		for _, c := range []stack.Component{stack.Orders, stack.Payments} {
			name := fmt.Sprintf("%s-%d", c.Name, i)
			s.Replicas = append(s.Replicas, launch(name, c.At(take(), ""), serviceArgs...))
		}
	}
	s.Reporting = launch(stack.Reporting.Name, placed[stack.Reporting.Name], serviceArgs...)
	s.BFF = launch(stack.BFF.Name, placed[stack.BFF.Name], slices.Concat(serviceArgs,
		// Every client here is 127.0.0.1, the load generator included: a
		// per-client limit meant for the internet would throttle it.
		[]string{"--rate-limit", "100000", "--rate-burst", "100000"}, standbyLag)...)

	for _, p := range s.Procs() {
		s.log.Info("starting", "component", p.Name, "log", p.logPath)
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Procs are the components in start order: the broker (unless the stack
// uses one it does not own), the relay and its standby, each instance of
// orders and of payments, reporting, the bff.
func (s *Stack) Procs() []*Proc {
	var procs []*Proc
	for _, p := range []*Proc{s.Broker, s.Relay, s.Standby, s.Orders, s.Payments} {
		if p != nil {
			procs = append(procs, p)
		}
	}
	procs = append(procs, s.Replicas...)
	return append(procs, s.Reporting, s.BFF)
}

// Proc is the component named name, nil when the stack has none.
func (s *Stack) Proc(name string) *Proc {
	for _, p := range s.Procs() {
		if p.Name == name {
			return p
		}
	}
	return nil
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
	for _, link := range []*faultproxy.Proxy{s.PostgresLink, s.BrokerLink} {
		if link != nil {
			errs = append(errs, link.Close())
		}
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

// httpOK is ready when GET url answers 200 within 2 s.
func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error { return GetOK(ctx, url, 2*time.Second) }
}

// GetOK asks GET url and returns nil when it answers 200 within timeout.
func GetOK(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
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

// OracleConfig is the oracle's configuration for this stack: its services'
// databases as the administrator, its broker and topics, and the orders
// the client placed (ops).
func (s *Stack) OracleConfig(ops []loadgen.Op, quiet time.Duration, log *slog.Logger) oracle.Config {
	dsns := map[string]string{}
	for _, service := range migrations.Services {
		dsns[service] = s.Cluster.AdminDSN(service)
	}
	return oracle.Config{Ops: ops, DSNs: dsns, BrokerURL: s.BrokerURL, Topics: s.Topics, QuietTimeout: quiet, Logger: log}
}
