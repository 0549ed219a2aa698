package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/services/eventcatalog"
)

// pulsarCmd runs the real Apache Pulsar on this machine, from its
// distribution (fetched once with Maven), without Docker.
type pulsarCmd struct {
	Up   pulsarUpCmd   `cmd:"" help:"Start a real Apache Pulsar standalone in the background and return once it serves."`
	Down pulsarDownCmd `cmd:"" help:"Stop the Pulsar that 'alpes pulsar up' started and remove its data."`
	Exec pulsarExecCmd `cmd:"" help:"Start a real Pulsar on free ports, run a command with ALPES_PULSAR_URL and ALPES_PULSAR_ADMIN_URL pointing at it, then stop it."`
}

// pulsarFlags are the launcher's settings shared by the subcommands.
type pulsarFlags struct {
	Version  string `name:"pulsar-version" help:"Apache Pulsar version (the server distribution from Maven)." default:"${pulsar_version}"`
	CacheDir string `help:"Where the distribution is fetched and unpacked once; default: the user's cache directory under alpes." placeholder:"DIR"`
	Memory   string `name:"pulsar-memory" help:"JVM heap and direct memory of the broker (PULSAR_MEM)." default:"${pulsar_memory}"`
}

func (f pulsarFlags) config(ctx context.Context, e env) (pulsarstandalone.Config, error) {
	cache := f.CacheDir
	if cache == "" {
		var err error
		if cache, err = pulsarstandalone.DefaultCacheDir(); err != nil {
			return pulsarstandalone.Config{}, err
		}
	}
	dist, err := pulsarstandalone.EnsureDistribution(ctx, cache, f.Version, e.log)
	if err != nil {
		return pulsarstandalone.Config{}, err
	}
	return pulsarstandalone.Config{Distribution: dist, Memory: f.Memory, Logger: e.log}, nil
}

type pulsarUpCmd struct {
	pulsarFlags
	Port      int `help:"Port of the Pulsar binary protocol on 127.0.0.1." default:"${broker_port}"`
	AdminPort int `help:"Port of the admin HTTP API on 127.0.0.1." default:"${broker_admin_port}"`
}

func (c *pulsarUpCmd) Run(ctx context.Context, e env) error {
	cfg, err := c.config(ctx, e)
	if err != nil {
		return err
	}
	cfg.Dir, cfg.ServicePort, cfg.AdminPort, cfg.Detach = pulsarstandalone.BackgroundDir(c.Port), c.Port, c.AdminPort, true
	s, err := pulsarstandalone.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if err := devstack.EnsureNamespaces(ctx, s.AdminURL, eventcatalog.DefaultTenant); err != nil {
		return errors.Join(err, s.Stop())
	}
	fmt.Fprintf(e.stdout, "Apache Pulsar %s serves: %s (admin %s), pid %d, files in %s\n"+
		"alpes's namespaces exist with deduplication on. Stop it with: alpes pulsar down --port %d\n",
		s.Version, s.ServiceURL, s.AdminURL, s.PID, s.Dir, c.Port)
	return nil
}

type pulsarDownCmd struct {
	Port int `help:"Port of the instance to stop, as given to 'alpes pulsar up'." default:"${broker_port}"`
}

func (c *pulsarDownCmd) Run(e env) error {
	s, err := pulsarstandalone.Attach(pulsarstandalone.BackgroundDir(c.Port))
	if errors.Is(err, pulsarstandalone.ErrNotRunning) {
		fmt.Fprintf(e.stdout, "no Pulsar started by 'alpes pulsar up' on port %d; nothing to stop\n", c.Port)
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.Stop(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Apache Pulsar on %s stopped; %s removed\n", s.ServiceURL, s.Dir)
	return nil
}

type pulsarExecCmd struct {
	pulsarFlags
	Command []string `arg:"" passthrough:"" help:"The command to run, after --."`
}

func (c *pulsarExecCmd) Run(ctx context.Context, e env) error {
	cfg, err := c.config(ctx, e)
	if err != nil {
		return err
	}
	if cfg.Dir, err = os.MkdirTemp("", "alpes-pulsar-exec-"); err != nil {
		return err
	}
	s, err := pulsarstandalone.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Stop()
	if err := devstack.EnsureNamespaces(ctx, s.AdminURL, eventcatalog.DefaultTenant); err != nil {
		return err
	}
	args := c.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("alpes pulsar exec: no command to run")
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, e.stdout, os.Stderr
	cmd.Env = append(os.Environ(), "ALPES_PULSAR_URL="+s.ServiceURL, "ALPES_PULSAR_ADMIN_URL="+s.AdminURL)
	e.log.Info("running against real Pulsar", "command", args, "service_url", s.ServiceURL, "log", s.LogPath())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s against real Pulsar: %w", args[0], err)
	}
	return nil
}
