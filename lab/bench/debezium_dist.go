package bench

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

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
	if err := os.MkdirAll(root, 0o755); err != nil {
		return d, fmt.Errorf("creating Debezium's cache directory: %w", err)
	}
	unlock, err := lockCache(filepath.Join(root, ".lock"))
	if err != nil {
		return d, err
	}
	defer unlock()
	if d.complete() { // another process fetched it while this one waited
		return d, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return d, fmt.Errorf("%w: mvn not found on PATH (Debian: apt-get install maven)", errDebeziumFetch)
	}
	tmp, err := os.MkdirTemp(root, ".fetch-")
	if err != nil {
		return d, fmt.Errorf("creating a download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	printf("   fetching Debezium Server %s with Maven, once, into %s", version, root)
	// The same invocation as Apache Pulsar's fetch (internal/pulsarstandalone).
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B",
		"org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
		"-Dartifact="+debeziumArtifact(version), "-DoutputDirectory="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return d, fmt.Errorf("%w: %s: %s", errDebeziumFetch, debeziumArtifact(version), mavenReason(out.String(), err))
	}
	unpacked := filepath.Join(tmp, "unpacked")
	if err := untarGz(filepath.Join(tmp, "debezium-server-dist-"+version+".tar.gz"), unpacked); err != nil {
		return d, fmt.Errorf("%w: unpacking: %v", errDebeziumFetch, err)
	}
	if err := os.Rename(filepath.Join(unpacked, "debezium-server"), d.Dir); err != nil {
		return d, fmt.Errorf("moving Debezium Server into the cache: %w", err)
	}
	if !d.complete() {
		return d, fmt.Errorf("%w: %s lacks the runner jar, the Postgres connector or the Pulsar sink", errDebeziumFetch, d.Dir)
	}
	return d, nil
}

// mavenReason is the line of Maven's output that says why it failed.
func mavenReason(out string, runErr error) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		_, after, ok := strings.Cut(sc.Text(), "[ERROR]")
		if after = strings.TrimSpace(after); ok && after != "" {
			return after
		}
	}
	if s := strings.Join(strings.Fields(out), " "); s != "" {
		return s
	}
	return runErr.Error()
}

// lockCache takes an exclusive lock on path, so that test binaries started
// together fetch once; the returned function releases it.
func lockCache(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the cache: %w", err)
	}
	return func() { f.Close() }, nil
}

// untarGz unpacks a gzipped tarball into dir: directories, regular files
// and symbolic links, none of them outside dir.
func untarGz(tarball, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
	root := filepath.Clean(dir) + string(os.PathSeparator)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target+string(os.PathSeparator), root) {
			return fmt.Errorf("entry %q leaves the directory", h.Name)
		}
		if h.Typeflag != tar.TypeDir {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = copyToFile(target, tr, os.FileMode(h.Mode)&0o777|0o200)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, target)
		}
		if err != nil {
			return err
		}
	}
}

func copyToFile(path string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
