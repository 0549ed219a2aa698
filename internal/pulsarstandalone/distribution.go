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
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultVersion is the Pulsar release alpes runs and is tested against;
// docker-compose.yml runs the image of the same version.
const DefaultVersion = "4.0.8"

// The reasons the launcher cannot run Pulsar here. Each error it returns for
// them wraps one of these and says in one line what is missing.
var (
	ErrNoJava  = errors.New("java not found")
	ErrNoMaven = errors.New("mvn not found")
	ErrFetch   = errors.New("fetching Pulsar's distribution with Maven failed")
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
// fetching and unpacking it the first time. Concurrent callers (test
// binaries started together) wait for one another on a lock file, so the
// distribution is fetched once.
func EnsureDistribution(ctx context.Context, cacheDir, version string, log *slog.Logger) (Distribution, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := Distribution{Version: version, Dir: filepath.Join(cacheDir, "pulsar", "apache-pulsar-"+version)}
	if _, err := JavaPath(); err != nil {
		return d, err
	}
	if isDistribution(d.Dir) {
		return d, nil
	}
	root := filepath.Dir(d.Dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return d, fmt.Errorf("creating the cache directory: %w", err)
	}
	unlock, err := lockFile(filepath.Join(root, ".lock"))
	if err != nil {
		return d, err
	}
	defer unlock()
	if isDistribution(d.Dir) { // another process fetched it while we waited
		return d, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return d, fmt.Errorf("%w on PATH: fetching Pulsar's distribution needs Maven (Debian: apt-get install maven)", ErrNoMaven)
	}
	tmp, err := os.MkdirTemp(root, ".fetch-")
	if err != nil {
		return d, fmt.Errorf("creating a download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	log.Info("fetching Pulsar's server distribution with Maven, once", "artifact", artifact(version), "cache", root)
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B",
		"org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
		"-Dartifact="+artifact(version), "-DoutputDirectory="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return d, fmt.Errorf("%w: %s: %s", ErrFetch, artifact(version), firstMavenError(out.String(), err))
	}
	tarball := filepath.Join(tmp, "pulsar-server-distribution-"+version+"-bin.tar.gz")
	unpacked := filepath.Join(tmp, "unpacked")
	if err := untar(tarball, unpacked); err != nil {
		return d, fmt.Errorf("unpacking %s: %w", filepath.Base(tarball), err)
	}
	if err := os.Rename(filepath.Join(unpacked, "apache-pulsar-"+version), d.Dir); err != nil {
		return d, fmt.Errorf("moving the distribution into the cache: %w", err)
	}
	if !isDistribution(d.Dir) {
		return d, fmt.Errorf("%w: %s has no bin/pulsar", ErrFetch, d.Dir)
	}
	return d, nil
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

// firstMavenError picks the line of Maven's output that says why, so the
// error stays one line.
func firstMavenError(out string, runErr error) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "[ERROR]"); i >= 0 && len(line) > i+8 {
			return strings.TrimSpace(line[i+7:])
		}
	}
	if s := strings.TrimSpace(out); s != "" {
		return strings.Join(strings.Fields(s), " ")
	}
	return runErr.Error()
}

// lockFile takes an exclusive lock on path, waiting for it, and returns
// the function that releases it.
func lockFile(path string) (func(), error) {
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

// untar unpacks a gzipped tarball into dir, refusing entries that would
// land outside it.
func untar(tarball, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
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
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(target, tr, os.FileMode(h.Mode)&0o777); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
