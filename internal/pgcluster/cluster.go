// Package pgcluster starts and stops throwaway PostgreSQL clusters from the
// local Postgres binaries: a fresh initdb in a private directory, a private
// port on 127.0.0.1 and a private socket directory, with wal_level=logical so
// logical replication works. The test harness (internal/pgtest) and
// `alpes dev` both stand on it.
//
// Postgres refuses to run as root. When the calling process is root, every
// Postgres program is started as the "postgres" OS user (the same thing
// `runuser -u postgres --` does, done with the process credentials so no shell
// is involved) and the cluster directory is handed to that user.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/netutil"
)

// Superuser is the name of the bootstrap superuser of every cluster.
const Superuser = "postgres"

// Options configures a cluster. The zero value starts a fast, non-durable
// cluster in a new temporary directory on a free port.
type Options struct {
	// BinDir holds initdb and postgres. Empty means discover them (see FindBinDir).
	BinDir string
	// Dir is where the data directory, socket directory and server log go.
	// Empty means a new temporary directory, removed by Stop.
	Dir string
	// Port is the TCP port on 127.0.0.1. Zero picks a free one.
	Port int
	// Durable keeps fsync and full-page writes on. Off (the default) trades
	// crash safety of the machine for speed: a Postgres crash loses nothing
	// (commits still reach the kernel before they return), an OS crash may
	// lose everything. Use it off only where durability is not under test.
	Durable bool
	// Settings are extra postgresql.conf settings, applied last.
	Settings map[string]string
	// Logger receives progress messages. Nil discards them.
	Logger *slog.Logger
}

// Cluster is a running throwaway Postgres cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	binDir    string
	dir       string
	ownsDir   bool
	dataDir   string
	socketDir string
	logPath   string
	port      int
	cred      *syscall.Credential
	log       *slog.Logger
	opts      Options

	stopOnce sync.Once
	stopErr  error
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the postmaster process has been reaped
	waitErr  error         // valid once exited is closed
}

// ErrNoBinaries means the Postgres server binaries could not be found.
var ErrNoBinaries = errors.New("postgres server binaries (initdb, postgres) not found")

// Start creates and starts a cluster and waits until it accepts connections.
// The caller must call Stop. If the calling process dies without calling Stop,
// the postmaster receives SIGQUIT (immediate shutdown) from the kernel.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		c.removeDir()
		return nil, err
	}
	if err := c.listen(ctx); err != nil {
		c.removeDir()
		return nil, err
	}
	return c, nil
}

// newCluster lays out the directories of a cluster that is not running yet.
func newCluster(opts Options) (*Cluster, error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{binDir: binDir, dir: opts.Dir, log: opts.Logger, opts: opts}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "alpes-pg-")
		if err != nil {
			return nil, fmt.Errorf("creating cluster directory: %w", err)
		}
		c.dir, c.ownsDir = dir, true
	}
	c.dataDir = filepath.Join(c.dir, "data")
	c.socketDir = filepath.Join(c.dir, "sock")
	c.logPath = filepath.Join(c.dir, "postgres.log")
	if err := c.prepareDir(); err != nil {
		c.removeDir()
		return nil, err
	}
	return c, nil
}

// listen starts the postmaster on the data directory, on Options.Port or
// a free port. A free port can be taken by someone else between our probe
// and the postmaster's bind; then it retries a few times with a new port.
func (c *Cluster) listen(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		port := c.opts.Port
		if port == 0 {
			var err error
			if port, err = netutil.FreePort(); err != nil {
				return err
			}
		}
		c.port = port
		err := c.start(ctx, c.opts)
		if err == nil {
			return nil
		}
		if c.opts.Port == 0 && attempt < 3 && strings.Contains(c.logTail(), "could not bind") {
			continue
		}
		return err
	}
}

// FindBinDir locates the directory holding the Postgres server binaries: the
// directory of `initdb` on PATH (symlinks resolved), else the newest
// /usr/lib/postgresql/<version>/bin, the Debian layout.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVersion := "", -1
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(m)))
		if err != nil || !isExecutable(filepath.Join(m, "initdb")) || !isExecutable(filepath.Join(m, "postgres")) {
			continue
		}
		if v > bestVersion {
			best, bestVersion = m, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w: looked for initdb on PATH and in /usr/lib/postgresql/*/bin", ErrNoBinaries)
	}
	return best, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Port is the TCP port the cluster listens on, on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// SocketDir is the directory of the cluster's Unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// BinDir is the directory of the Postgres binaries the cluster runs.
func (c *Cluster) BinDir() string { return c.binDir }

// DSN is a connection string for user on database over TCP on loopback.
// Authentication is trust: the cluster listens on 127.0.0.1 only.
func (c *Cluster) DSN(user, database string) string {
	return c.DSNVia(c.Addr(), user, database)
}

// Addr is the cluster's TCP address, 127.0.0.1:port.
func (c *Cluster) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// DSNVia is DSN for a client that reaches the cluster through addr (host:port),
// such as a fault proxy in front of it.
func (c *Cluster) DSNVia(addr, user, database string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", user, addr, database)
}

// AdminDSN is a connection string for the bootstrap superuser on database.
func (c *Cluster) AdminDSN(database string) string { return c.DSN(Superuser, database) }

// Restart stops the postmaster and starts it again on the same port and data
// directory, and waits until it accepts connections. With immediate it stops
// as a crash would (SIGQUIT: no checkpoint, crash recovery at start); else
// with a fast shutdown. Clients are disconnected either way. Restart must not
// run concurrently with Stop or another Restart.
func (c *Cluster) Restart(ctx context.Context, immediate bool) error {
	if err := c.Down(immediate); err != nil {
		return err
	}
	return c.Up(ctx)
}

// Down is the first half of Restart: it stops the postmaster, as a crash
// would with immediate, else with a fast shutdown, and returns once it has
// exited. Up starts it again.
func (c *Cluster) Down(immediate bool) error {
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	return c.shutdown(sig, 30*time.Second)
}

// Up is the second half of Restart: it starts the postmaster stopped by
// Down on the same port and data directory and waits until it accepts
// connections.
func (c *Cluster) Up(ctx context.Context) error { return c.start(ctx, c.opts) }

// Stop shuts the cluster down (fast shutdown: clients are disconnected) and
// removes its directory if Start created it. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopErr = c.shutdown(syscall.SIGINT, 30*time.Second)
		c.removeDir()
	})
	return c.stopErr
}

func (c *Cluster) shutdown(sig syscall.Signal, grace time.Duration) error {
	if c.cmd == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil // already gone
	default:
	}
	if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling postgres: %w", err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("postgres did not stop within %s; killed", grace)
}

func (c *Cluster) removeDir() {
	if c.ownsDir {
		_ = os.RemoveAll(c.dir)
	}
}

// logTail returns the last lines of the server log, for error messages.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls until the server accepts a connection, the process exits
// or ctx ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
		if err == nil {
			// Another server may hold the port (ours then fails to bind and
			// exits): only our own data directory counts as ready.
			var dir string
			err = conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir)
			conn.Close(ctx)
			if err == nil && dir == c.dataDir {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("port %d answers for another cluster (%s)", c.port, dir)
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited during startup (%v); log:\n%s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("waiting for postgres to accept connections: %w; last error: %v; log:\n%s", ctx.Err(), err, c.logTail())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// output runs a command to completion and wraps its output into the error.
func output(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Path), err, strings.TrimSpace(string(out)))
	}
	return nil
}
