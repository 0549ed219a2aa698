// Package procstack runs the whole of alpes as separate processes on one
// machine: a throwaway Postgres cluster with a migrated database per service,
// then the broker, the relay, orders, payments, reporting and the bff, each
// a child process of the alpes binary on its own loopback ports.
//
// It is what the benchmarks (`alpes bench`) and the chaos soak (`alpes
// chaos`) stand on: a component in its own process can be killed with
// SIGKILL, frozen with SIGSTOP, restarted on the same addresses, and its
// memory and CPU measured on their own. `alpes dev` runs the same components
// in one process instead (lab/devstack).
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

	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/oracle"
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
	for _, service := range migrations.Services {
		if err := devstack.CreateAndMigrate(ctx, s.Cluster, service, s.log); err != nil {
			return nil, err
		}
	}

	// Every port at once, so that none is handed out twice: the broker's
	// two, the relay's, orders', payments', reporting's and the bff's, then
	// the standby relay's and each further instance's of orders and payments.
	instances := max(opts.Instances, 1)
	addr, err := freeAddrs(7 + 1 + 2*(instances-1))
	if err != nil {
		return nil, err
	}
	brokerAddr, brokerAdmin, relayHTTP, ordersHTTP, paymentsHTTP, reportingHTTP, bffHTTP, standbyHTTP :=
		addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7]
	moreHTTP := addr[8:]
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
	// What the components dial: the servers, or the fault proxies before them.
	pgAddr, brokerURL := s.Cluster.Addr(), s.BrokerURL
	if opts.FaultProxies {
		if pgAddr, brokerURL, err = s.startLinks(); err != nil {
			return nil, err
		}
	}

	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	proc := func(name, url string, ready func(context.Context) error, args ...string) *Proc {
		return &Proc{
			Name: name, URL: url, binary: binary, env: opts.Env[name], ready: ready,
			args:    append(append([]string{"--log-level", level}, args...), opts.Args[name]...),
			logPath: filepath.Join(s.dir, name+".log"),
		}
	}
	// The tenant is given, not left to the default: a child inherits this
	// process's environment, ALPES_PULSAR_TENANT included.
	service := func(name string) []string {
		args := []string{name, "--dsn", s.Cluster.DSNVia(pgAddr, migrations.ServiceRole(name), name),
			"--pulsar-url", brokerURL, "--pulsar-tenant", s.Topics.Tenant}
		return append(args, opts.Sweeps.serviceArgs()...)
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
		s.Broker = proc("broker", s.BrokerAdminURL, provisioned(s.BrokerURL, s.BrokerAdminURL, s.Topics.Tenant, dialable(brokerAddr, brokerAdmin)), brokerArgs...)
	default:
		return nil, fmt.Errorf("unknown broker %q", opts.Pulsar)
	}

	relay := func(name, httpAddr string) *Proc {
		args := []string{"relay", "--pulsar-url", brokerURL, "--pulsar-admin-url", s.BrokerAdminURL,
			"--pulsar-tenant", s.Topics.Tenant, "--http-addr", httpAddr}
		for _, source := range migrations.Producers {
			args = append(args, "--source", source+"="+s.Cluster.DSNVia(pgAddr, migrations.RelayRole, source))
		}
		args = append(args, opts.Sweeps.relayArgs()...)
		// Ready when every source streams or waits on its lock as a standby.
		return proc(name, "http://"+httpAddr, httpOK("http://"+httpAddr+"/readyz"), args...)
	}
	s.Relay = relay("relay", relayHTTP)
	lagURLs := []string{s.RelayURL + "/v1/lag"}
	if opts.RelayStandby {
		s.Standby = relay("relay-2", standbyHTTP)
		lagURLs = append(lagURLs, s.Standby.URL+"/v1/lag")
	}

	// An instance of a service: the process name, the service it runs.
	consumer := func(name, svc, httpAddr, health string) *Proc {
		base := "http://" + httpAddr
		return proc(name, base, httpOK(base+health), append(service(svc), "--http-addr", httpAddr)...)
	}
	s.Orders = consumer("orders", "orders", ordersHTTP, "/healthz")
	s.Payments = consumer("payments", "payments", paymentsHTTP, "/healthz")
	for i := 2; i <= instances; i++ {
		for j, svc := range []string{"orders", "payments"} {
			name := fmt.Sprintf("%s-%d", svc, i)
			s.Replicas = append(s.Replicas, consumer(name, svc, moreHTTP[2*(i-2)+j], "/healthz"))
		}
	}
	s.Reporting = consumer("reporting", "reporting", reportingHTTP, "/readyz")

	bffArgs := append(service("bff"), "--http-addr", bffHTTP, "--reporting-url", s.ReportingURL,
		// Every client here is 127.0.0.1, the load generator included: a
		// per-client limit meant for the internet would throttle it.
		"--rate-limit", "100000", "--rate-burst", "100000")
	for _, u := range lagURLs {
		bffArgs = append(bffArgs, "--relay-lag-url", u)
	}
	for _, name := range []string{"orders", "payments", "reporting"} {
		bffArgs = append(bffArgs, "--progress-url", s.ProgressURLs[name])
	}
	s.BFF = proc("bff", s.BFFURL, httpOK(s.BFFURL+"/openapi.json"), bffArgs...)

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
