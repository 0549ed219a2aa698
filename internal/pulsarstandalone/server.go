package pulsarstandalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/alpes/alpes/internal/netutil"
)

// Config says where and how to run one Pulsar standalone instance.
type Config struct {
	// Distribution is what to run (see EnsureDistribution).
	Distribution Distribution
	// Dir holds the instance's configuration, data and logs; Stop removes
	// it. It is created when missing and must not hold another instance.
	Dir string
	// ServicePort and AdminPort are the binary protocol's and the admin
	// HTTP API's ports on 127.0.0.1. Zero picks a free port.
	ServicePort, AdminPort int
	// Memory is the JVM's heap and direct memory (PULSAR_MEM). Empty means
	// DefaultMemory.
	Memory string
	// ReadyTimeout bounds the wait until the instance serves. Zero means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Detach lets the instance outlive this process (`alpes pulsar up`);
	// otherwise it is killed when this process dies.
	Detach bool
	// Logger receives progress messages. Nil discards them.
	Logger *slog.Logger
}

// DefaultMemory fits a standalone broker, its bookie and metadata store in
// about 1.3 GB, enough for alpes's tests and local runs.
const DefaultMemory = "-Xms256m -Xmx1g -XX:MaxDirectMemorySize=1g"

// DefaultReadyTimeout allows for a slow first start on a busy 2-core machine
// (an idle one starts Pulsar in about ten seconds).
const DefaultReadyTimeout = 3 * time.Minute

// Server is a running Pulsar standalone instance.
type Server struct {
	State
	// exited receives the process's end when this process started it; nil
	// when attached to an instance another process started.
	exited chan error
}

// State is what identifies a running instance; `alpes pulsar up` writes it
// into the instance's directory so `alpes pulsar down` can find it.
type State struct {
	PID        int    `json:"pid"`
	Dir        string `json:"dir"`
	ServiceURL string `json:"service_url"`
	AdminURL   string `json:"admin_url"`
	Version    string `json:"version"`
}

const stateFile = "alpes-pulsar.json"

// Command is how to run one configured instance: what Start runs, for a
// caller that supervises the process itself (the process stack kills,
// freezes and restarts it). Env holds only the variables to add to the
// caller's environment.
type Command struct {
	Path                 string
	Args                 []string
	Env                  []string
	ServiceURL, AdminURL string
}

// Prepare configures an instance in cfg.Dir (its standalone.conf, empty data
// and log directories, ports) and returns how to run it, without starting it.
func Prepare(cfg Config) (Command, error) {
	if cfg.Dir == "" {
		return Command{}, errors.New("preparing Pulsar: no instance directory")
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, stateFile)); err == nil {
		return Command{}, fmt.Errorf("preparing Pulsar: %s already holds an instance (stop it with `alpes pulsar down`)", cfg.Dir)
	}
	java, err := JavaPath()
	if err != nil {
		return Command{}, err
	}
	var ports [2]int
	for i, p := range []int{cfg.ServicePort, cfg.AdminPort} {
		if p == 0 {
			if p, err = netutil.FreePort(); err != nil {
				return Command{}, err
			}
		}
		ports[i] = p
	}
	for _, dir := range []string{"conf", "data", "logs"} {
		// What a failed start left behind is no use to this one.
		if err := os.RemoveAll(filepath.Join(cfg.Dir, dir)); err != nil {
			return Command{}, fmt.Errorf("clearing the instance directory: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(cfg.Dir, dir), 0o755); err != nil {
			return Command{}, fmt.Errorf("creating the instance directory: %w", err)
		}
	}
	confPath, err := writeConfig(cfg.Distribution, cfg.Dir, ports[0], ports[1])
	if err != nil {
		return Command{}, err
	}
	memory := cfg.Memory
	if memory == "" {
		memory = DefaultMemory
	}
	return Command{
		Path: filepath.Join(cfg.Distribution.Dir, "bin", "pulsar"),
		Args: []string{"standalone", "--no-functions-worker", "--no-stream-storage",
			"--bookkeeper-dir", filepath.Join(cfg.Dir, "data", "bookkeeper"),
			"--metadata-dir", filepath.Join(cfg.Dir, "data", "metadata")},
		Env: []string{
			"JAVA_HOME=" + filepath.Dir(filepath.Dir(resolve(java))),
			"PULSAR_STANDALONE_CONF=" + confPath,
			"PULSAR_LOG_DIR=" + filepath.Join(cfg.Dir, "logs"),
			"PULSAR_MEM=" + memory,
		},
		ServiceURL: "pulsar://127.0.0.1:" + strconv.Itoa(ports[0]),
		AdminURL:   "http://127.0.0.1:" + strconv.Itoa(ports[1]),
	}, nil
}

// Start configures an instance in cfg.Dir, starts it and returns once it
// serves (see WaitReady). On failure nothing is left running.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := Prepare(cfg)
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(cfg.Dir, "logs", "standalone.out"))
	if err != nil {
		return nil, fmt.Errorf("creating the log file: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), c.Env...)
	// Its own process group (its own session when detached, so a terminal's
	// Ctrl-C does not reach it): Stop signals the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: cfg.Detach, Setpgid: !cfg.Detach}
	if !cfg.Detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	log.Info("starting Apache Pulsar standalone", "version", cfg.Distribution.Version, "dir", cfg.Dir,
		"service_url", c.ServiceURL, "admin_url", c.AdminURL)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	s := &Server{State: State{
		PID:        cmd.Process.Pid,
		Dir:        cfg.Dir,
		ServiceURL: c.ServiceURL,
		AdminURL:   c.AdminURL,
		Version:    cfg.Distribution.Version,
	}}
	s.exited = make(chan error, 1)
	go func() { s.exited <- cmd.Wait() }()
	timeout := cfg.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	if err := s.waitServing(ctx, timeout); err != nil {
		s.kill()
		s.removeAllButLog()
		return nil, err
	}
	if err := s.writeState(); err != nil {
		s.kill()
		s.removeAllButLog()
		return nil, err
	}
	log.Info("Apache Pulsar serves", "service_url", s.ServiceURL, "admin_url", s.AdminURL)
	return s, nil
}

// waitServing waits until the instance serves, or fails when it exits
// first or the timeout passes; the error ends with the log's last lines.
func (s *Server) waitServing(ctx context.Context, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- WaitReady(rctx, s.ServiceURL, s.AdminURL) }()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("waiting for Pulsar to serve: %w; its log says: %s", err, s.logTail())
		}
		return nil
	case werr := <-s.exited:
		s.exited = nil
		cancel()
		<-ready
		return fmt.Errorf("pulsar exited before it served (%v); its log says: %s", werr, s.logTail())
	}
}
