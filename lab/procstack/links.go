package procstack

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/alpes/alpes/internal/faultproxy"
)

// startLinks starts the fault proxies in front of Postgres and of the
// broker's binary protocol port (a Pulsar-aware one, so that clients stay
// behind it after their lookups) and returns what the components dial
// instead: the Postgres address and the Pulsar service URL.
func (s *Stack) startLinks() (pgAddr, brokerURL string, err error) {
	s.PostgresLink, err = faultproxy.Start(s.Cluster.Addr())
	if err != nil {
		return "", "", fmt.Errorf("starting the fault proxy before postgres: %w", err)
	}
	u, err := url.Parse(s.BrokerURL)
	if err != nil || u.Scheme != "pulsar" || u.Host == "" {
		return "", "", errors.Join(fmt.Errorf("the fault proxy needs a pulsar://host:port broker URL, not %q", s.BrokerURL), err)
	}
	s.BrokerLink, err = faultproxy.StartPulsar(u.Host)
	if err != nil {
		return "", "", fmt.Errorf("starting the fault proxy before the broker: %w", err)
	}
	return s.PostgresLink.Addr(), "pulsar://" + s.BrokerLink.Addr(), nil
}

// Sweeps are the retention sweeps' settings of a stack (Options.Sweeps):
// short retentions, so that a soak sees rows deleted while faults strike.
// Zero fields leave the components' defaults.
type Sweeps struct {
	// OutboxRetention is the relay's --outbox-retention: how long it keeps
	// outbox rows it streamed.
	OutboxRetention time.Duration
	// OutboxBatch is the relay's --outbox-sweep-batch.
	OutboxBatch int
	// OutboxInterval is the relay's (hidden) --outbox-sweep-interval.
	OutboxInterval time.Duration
	// InboxRetention is every consumer's --inbox-retention, allowed under
	// the production minimum (--inbox-short-retention).
	InboxRetention time.Duration
	// InboxInterval is every consumer's --inbox-sweep-interval.
	InboxInterval time.Duration
}

// relayArgs are the relay's flags for w; none for a nil w.
func (w *Sweeps) relayArgs() []string {
	var args []string
	if w == nil {
		return args
	}
	if w.OutboxRetention != 0 {
		args = append(args, "--outbox-retention", w.OutboxRetention.String())
	}
	if w.OutboxBatch != 0 {
		args = append(args, "--outbox-sweep-batch", strconv.Itoa(w.OutboxBatch))
	}
	if w.OutboxInterval != 0 {
		args = append(args, "--outbox-sweep-interval", w.OutboxInterval.String())
	}
	return args
}

// serviceArgs are a consumer's flags for w; none for a nil w.
func (w *Sweeps) serviceArgs() []string {
	var args []string
	if w == nil {
		return args
	}
	if w.InboxRetention != 0 {
		args = append(args, "--inbox-retention", w.InboxRetention.String(), "--inbox-short-retention")
	}
	if w.InboxInterval != 0 {
		args = append(args, "--inbox-sweep-interval", w.InboxInterval.String())
	}
	return args
}
