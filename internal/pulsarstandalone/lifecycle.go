package pulsarstandalone

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alpes/alpes/deploy/pulsarconf"
)

// stopGrace is how long Stop lets Pulsar shut down before killing it.
const stopGrace = 15 * time.Second

// ErrNotRunning is returned by Attach when a directory holds no instance.
var ErrNotRunning = errors.New("no Pulsar instance")

// BackgroundDir is where `alpes pulsar up` keeps the instance whose binary
// protocol listens on port, so that `alpes pulsar down` and `alpes dev
// --pulsar real` find it.
func BackgroundDir(port int) string {
	return filepath.Join(os.TempDir(), "alpes-pulsar-"+strconv.Itoa(port))
}

// Running reports whether the instance's process still runs.
func (s *Server) Running() bool { return s.alive() }

// Attach returns the instance that `alpes pulsar up` started in dir.
func Attach(dir string) (*Server, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNotRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the instance's state: %w", err)
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &Server{State: st}, nil
}

// Stop shuts the instance down (SIGTERM to its process group, SIGKILL after
// a grace period) and removes its directory: nothing is left behind.
func (s *Server) Stop() error {
	if s.alive() {
		syscall.Kill(-s.PID, syscall.SIGTERM)
		if !s.waitExit(stopGrace) {
			s.kill()
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("removing %s: %w", s.Dir, err)
	}
	return nil
}

// removeAllButLog removes a failed instance's data, keeping the log that
// the error message points to (the next Start in the directory clears it).
func (s *Server) removeAllButLog() {
	os.RemoveAll(filepath.Join(s.Dir, "data"))
	os.RemoveAll(filepath.Join(s.Dir, "conf"))
}

// kill ends the process group at once and waits for the process to go.
func (s *Server) kill() {
	syscall.Kill(-s.PID, syscall.SIGKILL)
	s.waitExit(stopGrace)
}

// waitExit reports whether the process ended within d.
func (s *Server) waitExit(d time.Duration) bool {
	if s.exited != nil {
		select {
		case <-s.exited:
			s.exited = nil
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for s.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // another process's child: only polling can tell
	}
	return true
}

// alive reports whether the instance's process still runs. For an attached
// instance it also checks that the pid is still Pulsar's, so a reused pid
// is never signalled.
func (s *Server) alive() bool {
	if s.exited != nil {
		return true
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/cmdline")
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), "PulsarStandaloneStarter") &&
		strings.Contains(string(cmdline), s.Dir)
}

func (s *Server) writeState() error {
	raw, err := json.MarshalIndent(s.State, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Dir, stateFile), raw, 0o644); err != nil {
		return fmt.Errorf("writing the instance's state: %w", err)
	}
	return nil
}

// LogPath is the instance's console log.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "logs", "standalone.out") }

// logTail says in one line why the instance stopped or did not start: the
// first error its log reports and the root cause of the last exception
// (what follows them is the shutdown they set off), else the last lines.
func (s *Server) logTail() string {
	raw, _ := os.ReadFile(s.LogPath())
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var firstError, rootCause string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case firstError == "" && strings.Contains(l, " ERROR ") && !strings.Contains(l, "this is okay"):
			firstError = l
		case strings.HasPrefix(l, "Caused by:"):
			rootCause = l
		}
	}
	if firstError != "" {
		return strings.TrimSpace(firstError+" "+rootCause) + " (full log: " + s.LogPath() + ")"
	}
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < 3; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	if len(keep) == 0 {
		return "(empty log)"
	}
	return strings.Join(keep, " | ")
}

// writeConfig writes the instance's standalone.conf: the distribution's,
// then alpes's settings (deploy/pulsarconf/standalone.conf), then this
// instance's addresses. It returns the file's path.
func writeConfig(d Distribution, dir string, servicePort, adminPort int) (string, error) {
	base, err := os.ReadFile(filepath.Join(d.Dir, "conf", "standalone.conf"))
	if err != nil {
		return "", fmt.Errorf("reading the distribution's standalone.conf: %w", err)
	}
	var b strings.Builder
	b.Write(base)
	b.WriteString("\n\n# ---- alpes: deploy/pulsarconf/standalone.conf ----\n")
	b.WriteString(pulsarconf.StandaloneOverrides)
	fmt.Fprintf(&b, "\n# ---- alpes: this instance ----\nbindAddress=127.0.0.1\nadvertisedAddress=127.0.0.1\n"+
		"brokerServicePort=%d\nwebServicePort=%d\n", servicePort, adminPort)
	path := filepath.Join(dir, "conf", "standalone.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("writing standalone.conf: %w", err)
	}
	return path, nil
}

// resolve follows symlinks (Debian's /usr/bin/java), so JAVA_HOME can be
// derived from the binary's real place.
func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}
