package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// Broker names, as the report's rows and the JSON's "broker" fields give
// them.
const (
	brokerEmbedded = "embedded"
	brokerPulsar   = "pulsar"
)

// brokerLabel is how the report names a broker.
func brokerLabel(name, pulsarVersion string) string {
	if name == brokerPulsar {
		return "Apache Pulsar " + pulsarVersion + " standalone"
	}
	return "embedded (`alpes broker --data`)"
}

// pulsarDistribution returns Apache Pulsar's server distribution
// (pulsarstandalone.DefaultVersion), which the launcher fetches once with
// Maven into its cache; later calls return the same one. It fails, never
// falls back, when Java or Maven is missing.
func (r *runner) pulsarDistribution(ctx context.Context) (pulsarstandalone.Distribution, error) {
	if r.pulsarDist != nil {
		return *r.pulsarDist, nil
	}
	cache, err := pulsarstandalone.DefaultCacheDir()
	if err != nil {
		return pulsarstandalone.Distribution{}, err
	}
	d, err := pulsarstandalone.EnsureDistribution(ctx, cache, pulsarstandalone.DefaultVersion, r.opts.Logger)
	if err != nil {
		return d, fmt.Errorf("getting Apache Pulsar's distribution: %w", err)
	}
	r.pulsarDist = &d
	return d, nil
}

// startPulsar starts a real Pulsar standalone with the launcher, in a new
// temporary directory, and waits until it serves. It is durable by nature
// (BookKeeper journals to disk) and runs alpes's settings
// (deploy/pulsarconf/standalone.conf), deduplication on. It returns the
// time until the instance served. The instance's Stop removes the
// directory; after a failed start the directory keeps the log the error
// points to.
func (r *runner) startPulsar(ctx context.Context) (*pulsarstandalone.Server, time.Duration, error) {
	dist, err := r.pulsarDistribution(ctx)
	if err != nil {
		return nil, 0, err
	}
	dir, err := os.MkdirTemp("", "alpes-bench-pulsar-")
	if err != nil {
		return nil, 0, fmt.Errorf("creating Pulsar's directory: %w", err)
	}
	start := time.Now()
	s, err := pulsarstandalone.Start(ctx, pulsarstandalone.Config{Distribution: dist, Dir: dir, Logger: r.opts.Logger})
	if err != nil {
		return nil, 0, fmt.Errorf("starting Apache Pulsar standalone: %w", err)
	}
	startup := time.Since(start)
	r.printf("   Apache Pulsar %s standalone up in %s (%s)", dist.Version, startup.Round(time.Millisecond), s.Dir)
	return s, startup, nil
}

// pidUsage is a live process's CPU time (user + system, every thread) and
// peak resident set (VmHWM, bytes) from /proc; zeros when it cannot be read.
func pidUsage(pid int) (cpu time.Duration, peakRSS int64) {
	if f, ok := procStat(pid); ok {
		cpu = ticks(f, 11, 12)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				var kb int64
				if _, err := fmt.Sscan(rest, &kb); err == nil {
					peakRSS = kb * 1024
				}
				break
			}
		}
	}
	return cpu, peakRSS
}

// javaVersion is the first line of `java -version` for the java real
// Pulsar runs on; empty when there is none.
func javaVersion(ctx context.Context) string {
	java, err := pulsarstandalone.JavaPath()
	if err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, java, "-version").CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
