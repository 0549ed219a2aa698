// Package mavenfetch fetches a distribution published as a tarball on
// Maven Central once, with the machine's Maven, into a cache directory
// outside the repository, and unpacks it there. Apache Pulsar's server
// distribution (internal/pulsarstandalone) and Debezium Server (lab/bench)
// are fetched this way.
package mavenfetch

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
)

// Errors of Ensure, each wrapped with a one-line reason.
var (
	ErrNoMaven = errors.New("mvn not found")
	ErrFetch   = errors.New("fetching with Maven failed")
)

// Distribution says what to fetch and where it lives once unpacked.
type Distribution struct {
	Name     string // for messages: "Pulsar's distribution"
	Artifact string // groupId:artifactId:version:type[:classifier]
	Tarball  string // the file Maven copies, e.g. pulsar-server-distribution-4.0.8-bin.tar.gz
	Top      string // the directory the tarball holds, e.g. apache-pulsar-4.0.8
	Dir      string // where the unpacked Top goes; its parent is the cache root
	// Complete reports whether Dir holds a whole distribution.
	Complete func(dir string) bool
	// Fetching, when set, is told before a download starts.
	Fetching func()
}

// Ensure makes d.Dir hold the distribution, fetching and unpacking it the
// first time. Concurrent callers (test binaries started together) wait for
// one another on a lock file in the cache root, so it is fetched once.
func Ensure(ctx context.Context, d Distribution) error {
	if d.Complete(d.Dir) {
		return nil
	}
	root := filepath.Dir(d.Dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("creating the cache directory: %w", err)
	}
	unlock, err := lock(filepath.Join(root, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if d.Complete(d.Dir) { // another process fetched it while this one waited
		return nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return fmt.Errorf("%w on PATH: fetching %s needs Maven (Debian: apt-get install maven)", ErrNoMaven, d.Name)
	}
	tmp, err := os.MkdirTemp(root, ".fetch-")
	if err != nil {
		return fmt.Errorf("creating a download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if d.Fetching != nil {
		d.Fetching()
	}
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B",
		"org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
		"-Dartifact="+d.Artifact, "-DoutputDirectory="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s: %s", ErrFetch, d.Artifact, firstError(out.String(), err))
	}
	unpacked := filepath.Join(tmp, "unpacked")
	if err := untar(filepath.Join(tmp, d.Tarball), unpacked); err != nil {
		return fmt.Errorf("%w: unpacking %s: %w", ErrFetch, d.Tarball, err)
	}
	if err := os.Rename(filepath.Join(unpacked, d.Top), d.Dir); err != nil {
		return fmt.Errorf("moving %s into the cache: %w", d.Name, err)
	}
	if !d.Complete(d.Dir) {
		return fmt.Errorf("%w: %s is not a whole %s", ErrFetch, d.Dir, d.Name)
	}
	return nil
}

// firstError picks the line of Maven's output that says why, so the error
// stays one line.
func firstError(out string, runErr error) string {
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

// lock takes an exclusive lock on path, waiting for it, and returns the
// function that releases it.
func lock(path string) (func(), error) {
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
