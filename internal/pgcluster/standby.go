package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Standbys and snapshots are how a test makes a source whose WAL goes
// backwards, the way production does: a fail-over to a standby that lagged,
// or a disk snapshot restored in place.

// StartStandby takes a base backup of c (pg_basebackup, streaming the WAL it
// needs) into a new cluster configured by opts, and starts it as a hot
// standby that follows c. Like c's own, its directory is removed by Stop.
// Logical replication slots are not part of a base backup.
func (c *Cluster) StartStandby(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.BinDir == "" {
		opts.BinDir = c.binDir
	}
	s, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	cmd := s.command(ctx, "pg_basebackup",
		"--pgdata", s.dataDir,
		"--host", c.socketDir,
		"--port", strconv.Itoa(c.port),
		"--username", Superuser,
		"--wal-method", "stream",
		"--checkpoint", "fast",
		"--write-recovery-conf", // standby.signal and primary_conninfo
		"--no-sync",
	)
	if err := output(cmd); err != nil {
		s.removeDir()
		return nil, fmt.Errorf("taking a base backup: %w", err)
	}
	if err := s.listen(ctx); err != nil {
		s.removeDir()
		return nil, err
	}
	return s, nil
}

// Detach restarts a standby without a primary to follow: it keeps the WAL
// it has and falls behind whatever its former primary writes next.
func (c *Cluster) Detach(ctx context.Context) error {
	if err := c.shutdown(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	if c.opts.Settings == nil {
		c.opts.Settings = map[string]string{}
	}
	c.opts.Settings["primary_conninfo"] = "" // the command line overrides the backup's setting
	return c.start(ctx, c.opts)
}

// Promote ends a standby's recovery: it becomes a primary on a new timeline,
// from the position it had replayed.
func (c *Cluster) Promote(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		return fmt.Errorf("promoting: %w", err)
	}
	defer conn.Close(ctx)
	var done bool
	if err := conn.QueryRow(ctx, `SELECT pg_promote(wait => true, wait_seconds => 60)`).Scan(&done); err != nil {
		return fmt.Errorf("promoting: %w", err)
	}
	if !done {
		return fmt.Errorf("promoting: not done within 60 s; log:\n%s", c.logTail())
	}
	return nil
}

// Snapshot stops the server (fast shutdown), copies its data directory as a
// disk snapshot would, and starts it again. It returns the copy's path.
func (c *Cluster) Snapshot(ctx context.Context) (string, error) {
	if err := c.shutdown(syscall.SIGINT, 30*time.Second); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(c.dir, "snapshot-")
	if err == nil {
		err = exec.CommandContext(ctx, "cp", "-a", c.dataDir, dir).Run() // keeps owner and modes
	}
	if err != nil {
		return "", fmt.Errorf("copying the data directory: %w", err)
	}
	return filepath.Join(dir, filepath.Base(c.dataDir)), c.start(ctx, c.opts)
}

// RestoreSnapshot stops the server, puts back the data directory Snapshot
// copied, and starts it again: the same cluster (system identifier,
// timeline), its WAL ending where the snapshot was taken.
func (c *Cluster) RestoreSnapshot(ctx context.Context, snap string) error {
	if err := c.shutdown(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	if err := os.RemoveAll(c.dataDir); err != nil {
		return fmt.Errorf("removing the data directory: %w", err)
	}
	if err := exec.CommandContext(ctx, "cp", "-a", snap, c.dataDir).Run(); err != nil {
		return fmt.Errorf("restoring the snapshot: %w", err)
	}
	return c.start(ctx, c.opts)
}
