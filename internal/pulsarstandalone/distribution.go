// Package pulsarstandalone runs the real Apache Pulsar, standalone, on this
// machine without Docker: it fetches Pulsar's server distribution once with
// Maven into a cache outside the repository, configures an instance in a
// directory of its own (loopback ports, deduplication as docker-compose.yml
// runs it), starts it and waits until it really serves. `alpes pulsar`,
// `alpes dev --pulsar real` and the real-Pulsar test pass all stand on it.
//
// It never falls back to the embedded broker: when Java or Maven is missing,
// or the distribution cannot be fetched, it says so in one line.
package pulsarstandalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/alpes/alpes/internal/mavenfetch"
)

// DefaultVersion is the Pulsar release alpes runs and is tested against;
// docker-compose.yml runs the image of the same version.
const DefaultVersion = "4.0.8"

// The reasons the launcher cannot run Pulsar here. Each error it returns for
// them wraps one of these and says in one line what is missing.
var (
	ErrNoJava  = errors.New("java not found")
	ErrNoMaven = mavenfetch.ErrNoMaven
	ErrFetch   = mavenfetch.ErrFetch
)

// Distribution is an unpacked Apache Pulsar server distribution.
type Distribution struct {
	Version string
	Dir     string // holds bin/pulsar, conf/, lib/
}

// DefaultCacheDir is where distributions are kept when no cache directory is
// given: the user's cache directory (XDG_CACHE_HOME or ~/.cache) under
// alpes, or, for a user without a home (some CI runners), alpes-cache in
// the temporary directory.
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "alpes-cache"), nil
	}
	return filepath.Join(base, "alpes"), nil
}

// artifact is Pulsar's server distribution as Maven Central publishes it.
func artifact(version string) string {
	return "org.apache.pulsar:pulsar-server-distribution:" + version + ":tar.gz:bin"
}

// EnsureDistribution returns the distribution of version under cacheDir,
// fetching and unpacking it the first time (internal/mavenfetch: once, even
// when test binaries started together ask at the same time).
func EnsureDistribution(ctx context.Context, cacheDir, version string, log *slog.Logger) (Distribution, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := Distribution{Version: version, Dir: filepath.Join(cacheDir, "pulsar", "apache-pulsar-"+version)}
	if _, err := JavaPath(); err != nil {
		return d, err
	}
	err := mavenfetch.Ensure(ctx, mavenfetch.Distribution{
		Name: "Pulsar's distribution", Artifact: artifact(version),
		Tarball: "pulsar-server-distribution-" + version + "-bin.tar.gz", Top: "apache-pulsar-" + version,
		Dir: d.Dir, Complete: isDistribution,
		Fetching: func() {
			log.Info("fetching Pulsar's server distribution with Maven, once", "artifact", artifact(version), "cache", filepath.Dir(d.Dir))
		},
	})
	return d, err
}

// JavaPath finds the java that bin/pulsar will run: JAVA_HOME's, else the
// one on PATH.
func JavaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		return "", fmt.Errorf("%w: JAVA_HOME=%s has no bin/java", ErrNoJava, home)
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("%w on PATH and JAVA_HOME unset: real Pulsar needs Java 17 or later (Debian: apt-get install openjdk-17-jre-headless)", ErrNoJava)
	}
	return p, nil
}

func isDistribution(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "bin", "pulsar"))
	return err == nil && st.Mode()&0o100 != 0
}
