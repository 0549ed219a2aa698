package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/alpes/alpes/internal/pulsaradmin"
)

// The relay's exactly-once rests on the broker's deduplication (see
// sequence.go): without it, whatever a restarted relay sends again is stored
// again. So before a session publishes to a topic for the first time, it
// asks the admin API which deduplication applies there (the topic's own
// policy, else its namespace's, else the broker's default) and stops the
// source when it is off, unless Config.AllowNoDedup says to go on.

// ErrDeduplicationOff is wrapped by the error that stops a source whose
// topic's namespace (or the topic itself) does not deduplicate.
var ErrDeduplicationOff = errors.New("deduplication is off")

// dedupOffError names where deduplication is off and how to turn it on.
type dedupOffError struct {
	topic string
	d     pulsaradmin.Deduplication
}

func (e *dedupOffError) Error() string {
	const why = "a restarted relay would publish duplicates"
	switch e.d.Level {
	case "topic":
		return fmt.Sprintf("deduplication is off for topic %s (a topic policy): %s; enable it with `pulsar-admin topics set-deduplication %s --enable`, or allow the relay to publish without it (Config.AllowNoDedup)",
			e.topic, why, e.topic)
	case "broker":
		return fmt.Sprintf("deduplication is off for namespace %s (no policy of its own, and the broker's brokerDeduplicationEnabled is false): %s; enable it with `pulsar-admin namespaces set-deduplication %s --enable`, or allow the relay to publish without it (Config.AllowNoDedup)",
			e.d.Namespace, why, e.d.Namespace)
	}
	return fmt.Sprintf("deduplication is off for namespace %s: %s; enable it with `pulsar-admin namespaces set-deduplication %s --enable`, or allow the relay to publish without it (Config.AllowNoDedup)",
		e.d.Namespace, why, e.d.Namespace)
}

func (e *dedupOffError) Unwrap() error { return ErrDeduplicationOff }

// dedupCheckTimeout bounds one verification: a few admin calls.
const dedupCheckTimeout = 30 * time.Second

// dedupGuard verifies each topic once per session, before the first message
// to it. A nil guard, or one without an admin client, verifies nothing. It
// is used by one goroutine.
type dedupGuard struct {
	admin    *pulsaradmin.Client
	allow    bool // Config.AllowNoDedup: warn and go on
	log      *slog.Logger
	verified map[string]struct{}
}

func newDedupGuard(admin *pulsaradmin.Client, allow bool, log *slog.Logger) *dedupGuard {
	return &dedupGuard{admin: admin, allow: allow, log: log, verified: map[string]struct{}{}}
}

// check returns nil when deduplication applies to topic (or AllowNoDedup
// lets the relay publish regardless), an error wrapping ErrDeduplicationOff
// when it does not, and another error when it cannot tell.
func (g *dedupGuard) check(ctx context.Context, topic string) error {
	if g == nil || g.admin == nil {
		return nil
	}
	if _, ok := g.verified[topic]; ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, dedupCheckTimeout)
	d, err := g.admin.TopicDeduplication(ctx, topic)
	cancel()
	if err != nil {
		err = fmt.Errorf("verifying the deduplication of %s: %w", topic, err)
	} else if !d.Enabled {
		err = &dedupOffError{topic: topic, d: d}
	}
	if err != nil {
		if !g.allow {
			return err
		}
		g.log.Warn("publishing without deduplication (allowed by Config.AllowNoDedup)", "topic", topic, "err", err)
	}
	g.verified[topic] = struct{}{}
	return nil
}

// newAdminClient returns the client of the broker's admin API that the
// guards use, nil when p has no admin URL. It authenticates with the
// broker's token and trusts the broker's CA bundle.
func newAdminClient(p PulsarConfig) (*pulsaradmin.Client, error) {
	if p.AdminURL == "" {
		return nil, nil
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if p.TLSTrustCerts != "" {
		pool, err := loadCAPool(p.TLSTrustCerts)
		if err != nil {
			return nil, err
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return pulsaradmin.NewWithHTTPClient(p.AdminURL, p.Token, hc), nil
}

// loadCAPool reads the broker's CA bundle, for the relay's own connections
// to it (the admin API, the producers of pulsarsend).
func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading the CA bundle %s: no certificate", path)
	}
	return pool, nil
}
