package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/internal/pulsaradmin"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/services/eventcatalog"
)

// The brokers the stack can run on (Config.Pulsar).
const (
	// PulsarEmbedded is alpes's own broker, in this process (the default).
	PulsarEmbedded = "embedded"
	// PulsarReal is the real Apache Pulsar standalone, started for the stack
	// from its distribution (internal/pulsarstandalone) and stopped with it.
	PulsarReal = "real"
)

// runningBroker is the Pulsar the stack talks to, whichever kind it is.
type runningBroker struct {
	kind       string // what printSummary calls it
	serviceURL string
	adminURL   string
	stop       func() error
}

// startBroker starts (or, with PulsarURL, finds) the broker cfg asks for and
// makes sure alpes's namespaces exist on it with deduplication on.
func startBroker(ctx context.Context, cfg Config, log *slog.Logger) (*runningBroker, error) {
	var b *runningBroker
	switch {
	case cfg.PulsarURL != "":
		if cfg.PulsarAdminURL == "" {
			return nil, errors.New("a Pulsar URL without its admin URL: give both")
		}
		b = &runningBroker{kind: "Pulsar (yours)", serviceURL: cfg.PulsarURL, adminURL: cfg.PulsarAdminURL, stop: func() error { return nil }}
	case cfg.Pulsar == "" || cfg.Pulsar == PulsarEmbedded:
		bcfg := broker.DefaultConfig()
		bcfg.ServiceAddr, bcfg.AdminAddr = cfg.BrokerAddr, cfg.BrokerAdminAddr
		bcfg.Logger = log.With("component", "broker")
		// Not bound to ctx: the broker outlives a Ctrl-C until Run has
		// stopped every client of it (b.stop).
		eb, err := broker.Start(context.WithoutCancel(ctx), bcfg)
		if err != nil {
			return nil, fmt.Errorf("starting the broker: %w", err)
		}
		b = &runningBroker{kind: "Pulsar (embedded broker)", serviceURL: eb.ServiceURL(), adminURL: eb.AdminURL(), stop: eb.Close}
	case cfg.Pulsar == PulsarReal:
		if s := backgroundPulsar(cfg); s != nil {
			log.Info("using the Pulsar that `alpes pulsar up` started", "service_url", s.ServiceURL, "dir", s.Dir)
			b = &runningBroker{kind: "Apache Pulsar " + s.Version + " (alpes pulsar up)", serviceURL: s.ServiceURL, adminURL: s.AdminURL, stop: func() error { return nil }}
			break
		}
		s, err := startRealPulsar(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		b = &runningBroker{kind: "Apache Pulsar " + s.Version, serviceURL: s.ServiceURL, adminURL: s.AdminURL, stop: s.Stop}
	default:
		return nil, fmt.Errorf("unknown broker %q: %s or %s", cfg.Pulsar, PulsarEmbedded, PulsarReal)
	}
	if err := EnsureNamespaces(ctx, b.adminURL, cfg.Tenant); err != nil {
		return nil, errors.Join(err, b.stop())
	}
	return b, nil
}

// backgroundPulsar is the instance `alpes pulsar up` started on the
// broker's port, if one runs there: the stack then uses it and leaves it
// running, instead of failing to start a second one on a taken port.
func backgroundPulsar(cfg Config) *pulsarstandalone.Server {
	p, err := port(cfg.BrokerAddr)
	if err != nil {
		return nil
	}
	s, err := pulsarstandalone.Attach(pulsarstandalone.BackgroundDir(p))
	if err != nil || !s.Running() {
		return nil
	}
	return s
}

// startRealPulsar runs the real Pulsar on the ports the embedded broker
// would use, in a temporary directory removed when it stops.
func startRealPulsar(ctx context.Context, cfg Config, log *slog.Logger) (*pulsarstandalone.Server, error) {
	servicePort, err := port(cfg.BrokerAddr)
	if err != nil {
		return nil, err
	}
	adminPort, err := port(cfg.BrokerAdminAddr)
	if err != nil {
		return nil, err
	}
	cache := cfg.PulsarCacheDir
	if cache == "" {
		if cache, err = pulsarstandalone.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	dist, err := pulsarstandalone.EnsureDistribution(ctx, cache, pulsarstandalone.DefaultVersion, log)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "alpes-dev-pulsar-")
	if err != nil {
		return nil, err
	}
	return pulsarstandalone.Start(ctx, pulsarstandalone.Config{
		Distribution: dist, Dir: dir, ServicePort: servicePort, AdminPort: adminPort,
		Logger: log.With("component", "pulsar"),
	})
}

// port is the port of a 127.0.0.1:PORT listen address; the real Pulsar
// listens on loopback only.
func port(addr string) (int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("broker address %q: %w", addr, err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return 0, fmt.Errorf("broker address %q: the real Pulsar listens on 127.0.0.1 only", addr)
	}
	return strconv.Atoi(p)
}

// Namespaces are the namespaces of tenant that alpes publishes to, as
// tenant/name (docs/adr/0006-topic-naming-and-keys.md).
func Namespaces(tenant string) []string {
	var out []string
	for _, ns := range eventcatalog.Namespaces() {
		out = append(out, tenant+"/"+ns)
	}
	return out
}

// EnsureNamespaces creates tenant and alpes's namespaces in it on the broker
// at adminURL, with deduplication on, as docker-compose.yml's pulsar-init
// does; it is safe to run again.
func EnsureNamespaces(ctx context.Context, adminURL, tenant string) error {
	admin := pulsaradmin.New(adminURL, "")
	for _, ns := range Namespaces(tenant) {
		if err := admin.EnsureNamespace(ctx, ns, true); err != nil {
			return err
		}
	}
	return nil
}
