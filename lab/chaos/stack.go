package chaos

import (
	"fmt"

	"github.com/alpes/alpes/lab/procstack"
)

// stackOptions are the options of the soak's stack: durable, with
// wal_sender_timeout at WalSenderTimeout, and with what the faults need:
// fault proxies on the links for a network fault, Instances of orders and
// payments for a churn, a standby relay for a failover.
func (c Config) stackOptions() procstack.Options {
	opts := procstack.Options{
		Binary: c.Binary, Dir: c.Dir, Durable: true, Logger: c.Logger,
		Pulsar: c.Pulsar, PulsarDistribution: c.PulsarDistribution,
		PulsarURL: c.PulsarURL, PulsarAdminURL: c.PulsarAdminURL, Tenant: c.Tenant,
		PostgresSettings: map[string]string{"wal_sender_timeout": fmt.Sprintf("%dms", c.WalSenderTimeout.Milliseconds())},
		Sweeps:           c.Sweeps,
	}
	for _, f := range c.Faults {
		switch {
		case f.isLink():
			opts.FaultProxies = true
		case f.Action == Churn:
			opts.Instances = c.Instances
		case f.Action == Failover:
			opts.RelayStandby = true
		}
	}
	return opts
}
