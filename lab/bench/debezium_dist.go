package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alpes/alpes/internal/mavenfetch"
	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// debeziumVersion is the Debezium Server release B‴ runs. Maven Central
// serves the distribution's tarball for 2.7.3.Final (without a POM, which
// Maven only warns about); 2.7.4.Final, the last 2.7 release, is not served
// from here. 2.7 runs on Java 17, the JVM real Pulsar runs on.
const debeziumVersion = "2.7.3.Final"

// errDebeziumFetch wraps every failure to fetch or unpack Debezium Server.
var errDebeziumFetch = errors.New("fetching Debezium Server's distribution with Maven failed")

// debeziumDist is an unpacked Debezium Server distribution: the runner jar
// and lib/ with the Postgres connector, the outbox event router and the
// Pulsar sink.
type debeziumDist struct {
	Version string
	Dir     string // holds the runner jar and lib/
}

// runner is the distribution's Quarkus runner jar.
func (d debeziumDist) runner() string {
	return filepath.Join(d.Dir, "debezium-server-dist-"+d.Version+"-runner.jar")
}

// debeziumArtifact is the server distribution as Maven Central publishes it:
// a tarball without a classifier.
func debeziumArtifact(version string) string {
	return "io.debezium:debezium-server-dist:" + version + ":tar.gz"
}

// complete reports whether d.Dir holds what B‴ runs.
func (d debeziumDist) complete() bool {
	for _, p := range []string{
		d.runner(),
		filepath.Join(d.Dir, "lib", "debezium-connector-postgres-"+d.Version+".jar"),
		filepath.Join(d.Dir, "lib", "debezium-server-pulsar-"+d.Version+".jar"),
	} {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

// debeziumDistribution returns Debezium Server's distribution, fetched once
// per machine with Maven into alpes's cache (beside Apache Pulsar's, under
// debezium/) and unpacked there; later calls in the same run return the
// same one, or the same error. It needs Java (it says so when there is
// none) and, the first time, Maven.
func (r *runner) debeziumDistribution(ctx context.Context) (debeziumDist, error) {
	if r.debezium != nil {
		return r.debezium.dist, r.debezium.err
	}
	d, err := ensureDebezium(ctx, debeziumVersion, r.printf)
	r.debezium = &debeziumState{dist: d, err: err}
	return d, err
}

// debeziumState is the outcome of getting the distribution, kept for the
// run.
type debeziumState struct {
	dist debeziumDist
	err  error
}

func ensureDebezium(ctx context.Context, version string, printf func(string, ...any)) (debeziumDist, error) {
	cache, err := pulsarstandalone.DefaultCacheDir()
	if err != nil {
		return debeziumDist{}, err
	}
	root := filepath.Join(cache, "debezium")
	d := debeziumDist{Version: version, Dir: filepath.Join(root, "debezium-server-"+version)}
	if _, err := pulsarstandalone.JavaPath(); err != nil {
		return d, fmt.Errorf("Debezium Server needs Java 17 or later: %w", err)
	}
	if d.complete() {
		return d, nil
	}
	err = mavenfetch.Ensure(ctx, mavenfetch.Distribution{
		Name: "Debezium Server " + version, Artifact: debeziumArtifact(version),
		Tarball: "debezium-server-dist-" + version + ".tar.gz", Top: "debezium-server",
		Dir: d.Dir, Complete: func(string) bool { return d.complete() },
		Fetching: func() { printf("   fetching Debezium Server %s with Maven, once, into %s", version, root) },
	})
	if err != nil {
		return d, fmt.Errorf("%w: %w", errDebeziumFetch, err)
	}
	return d, nil
}
