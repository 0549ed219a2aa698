package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/alpes/alpes/relay/pgsource"
)

// Relay serves the sources of one relay process.
type Relay struct {
	cfg     Config
	runners []*sourceRunner
}

// New validates cfg and returns a Relay ready to Run.
func New(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg}
	for _, s := range cfg.Sources {
		r.runners = append(r.runners, newSourceRunner(s, &r.cfg))
	}
	return r, nil
}

// ErrSourcesLost is returned by Run when every source has stopped because
// its slot was lost.
var ErrSourcesLost = errors.New("every source stopped")

// Run serves every source, and the HTTP endpoints when Config.HTTPAddr is
// set, until ctx ends (nil) or every source has stopped for good.
func (r *Relay) Run(ctx context.Context) error {
	var ln net.Listener
	if r.cfg.HTTPAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", r.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listening for HTTP: %w", err)
		}
	}
	return r.Serve(ctx, ln)
}

// Serve is Run with the HTTP endpoints on ln (none when ln is nil).
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	switch {
	case r.cfg.admin == nil:
		r.cfg.Logger.Warn("not verifying that the broker deduplicates: no Pulsar admin URL (PulsarConfig.AdminURL); a restarted relay may publish duplicates")
	case r.cfg.AllowNoDedup:
		r.cfg.Logger.Warn("allowed to publish without deduplication (Config.AllowNoDedup): publishing to namespaces without deduplication too; a restarted relay may publish duplicates there")
	}
	var srv *http.Server
	httpDone := make(chan error, 1)
	if ln != nil {
		srv = &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { httpDone <- srv.Serve(ln) }()
		r.cfg.Logger.Info("serving HTTP", "addr", ln.Addr().String())
	}

	g := new(errgroup.Group)
	lost := make(chan error, len(r.runners))
	for _, s := range r.runners {
		g.Go(func() error {
			err := s.run(ctx)
			if err != nil {
				lost <- err
			}
			return nil
		})
	}
	g.Wait()
	close(lost)

	if srv != nil {
		shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutting down HTTP: %w", err)
		}
		<-httpDone
	}
	var errs []error
	for err := range lost {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrSourcesLost, errors.Join(errs...))
	}
	return nil
}

// Lag reports every source's replication state.
func (r *Relay) Lag() []SourceLag {
	now := time.Now()
	out := make([]SourceLag, len(r.runners))
	for i, s := range r.runners {
		out[i] = s.stats.lag(s.cfg, now)
	}
	return out
}

// ErrSlotLost is pgsource.ErrSlotLost, for callers of this package.
var ErrSlotLost = pgsource.ErrSlotLost
