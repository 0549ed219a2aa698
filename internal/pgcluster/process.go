package pgcluster

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// prepareDir creates the socket directory and, when running as root, looks up
// the postgres OS user and hands it the cluster directory.
func (c *Cluster) prepareDir() error {
	if err := os.MkdirAll(c.socketDir, 0o700); err != nil {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres OS user to start Postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return fmt.Errorf("opening cluster directory to postgres: %w", err)
	}
	if err := reachable(filepath.Dir(c.dir)); err != nil {
		return err
	}
	return filepath.WalkDir(c.dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, uid, gid); err != nil {
			return fmt.Errorf("handing %s to postgres: %w", path, err)
		}
		return nil
	})
}

// command prepares a Postgres program to run as the right OS user.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ctx == nil {
		cmd = exec.Command(filepath.Join(c.binDir, name), args...)
	} else {
		cmd = exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

func (c *Cluster) initdb(ctx context.Context) error {
	c.log.Debug("initdb", "dir", c.dataDir)
	cmd := c.command(ctx, "initdb",
		"--pgdata", c.dataDir,
		"--username", Superuser,
		"--auth", "trust",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync",
		"--no-instructions",
	)
	if err := output(cmd); err != nil {
		return fmt.Errorf("initialising cluster: %w", err)
	}
	return nil
}

// settings are the postgresql.conf settings of a cluster, as -c flags.
func (c *Cluster) settings(opts Options) []string {
	s := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(c.port),
		"unix_socket_directories": c.socketDir,
		"wal_level":               "logical",
		"max_wal_senders":         "20",
		"max_replication_slots":   "20",
		"max_slot_wal_keep_size":  "1GB",
		"max_connections":         "200",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
		"timezone":                "UTC",
	}
	if !opts.Durable {
		// Skip the disk, not the WAL write: synchronous_commit stays on, so a
		// commit is in the kernel's hands (safe from a Postgres crash) and,
		// above all, visible to logical decoding at once. With it off, the
		// WAL writer would hold every change back for up to wal_writer_delay
		// (200 ms) before a walsender could stream it: per hop of the pipeline.
		s["fsync"] = "off"
		s["full_page_writes"] = "off"
	}
	maps.Copy(s, opts.Settings)
	args := make([]string, 0, 2*len(s)+2)
	args = append(args, "-D", c.dataDir)
	for _, k := range slices.Sorted(maps.Keys(s)) {
		args = append(args, "-c", k+"="+s[k])
	}
	return args
}

// start launches the postmaster as a child process and waits until it is ready.
func (c *Cluster) start(ctx context.Context, opts Options) error {
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("opening server log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	if c.cred != nil {
		if err := logFile.Chown(int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("handing server log to postgres: %w", err)
		}
	}
	// Not bound to ctx: the cluster outlives the call that started it.
	cmd := c.command(nil, "postgres", c.settings(opts)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If this process dies without Stop, the kernel tells the postmaster to
	// shut down immediately; its backends follow it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	// Keep terminal signals (Ctrl-C) away from the postmaster: Stop decides.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	c.cmd = cmd
	c.exited = make(chan struct{})
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	c.log.Debug("postgres starting", "port", c.port, "pid", cmd.Process.Pid)
	if err := c.waitReady(ctx); err != nil {
		_ = c.shutdown(syscall.SIGQUIT, 10*time.Second)
		return err
	}
	return nil
}

// reachable reports an error unless every directory from dir up to the root
// lets others through (o+x), which the postgres OS user needs to reach the
// cluster directory when we run as root.
func reachable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the postgres OS user cannot reach the cluster directory: %s is not traversable by others (chmod o+x, or choose another directory)", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
