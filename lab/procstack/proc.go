package procstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one alpes component running as a child process: the same binary
// with a subcommand and flags. It can be killed, frozen, thawed and started
// again on the same addresses, and it remembers what its incarnations used:
// the highest resident set and the CPU time, summed over restarts.
// Its methods are safe for concurrent use.
type Proc struct {
	// Name is the component's name: broker, relay, orders, orders-2, ….
	Name string
	// URL is the base URL (http://host:port) of the component's HTTP
	// endpoints: the admin API of the broker.
	URL string

	binary  string
	args    []string
	env     []string
	logPath string
	ready   func(context.Context) error

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has been reaped
	waitErr   error         // valid once exited is closed
	starts    int
	peakRSS   int64         // bytes, the highest of any incarnation sampled so far
	pastCPU   time.Duration // CPU time of the incarnations that have exited
	countedOf *exec.Cmd     // the incarnation whose CPU time pastCPU already holds
}

// Start launches the process and waits until its readiness check passes, it
// exits, or ctx ends. Starting a running Proc is an error.
func (p *Proc) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil && !isClosed(p.exited) {
		p.mu.Unlock()
		return fmt.Errorf("%s is already running", p.Name)
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("opening %s's log: %w", p.Name, err)
	}
	defer log.Close() // the child keeps its own descriptor
	fmt.Fprintf(log, "\n==== procstack: starting %s (incarnation %d) at %s\n", p.Name, p.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.binary, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	// A child outlives a crashed parent only until the kernel notices; and
	// Ctrl-C at a terminal reaches the parent alone, which decides.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.waitErr = cmd, exited, nil
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.countCPU(cmd)
		p.mu.Unlock()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := p.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting (%v); log tail:\n%s", p.Name, p.ExitErr(), p.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last check: %v); log tail:\n%s", p.Name, ctx.Err(), err, p.LogTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// countCPU adds an exited incarnation's CPU time, once. Called with mu held.
func (p *Proc) countCPU(cmd *exec.Cmd) {
	if cmd.ProcessState == nil || p.countedOf == cmd {
		return
	}
	p.pastCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	p.countedOf = cmd
}

// SetEnv replaces the environment variables (NAME=value) that the next
// Start adds to the process's, e.g. to start it again without the failpoints
// it was started with.
func (p *Proc) SetEnv(env []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env = env
}

// Running reports whether an incarnation is alive (possibly frozen).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.exited)
}

// Exited is closed when the current incarnation has exited; nil before the
// first Start.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// ExitErr is how the last incarnation ended; nil while it runs or when it
// exited with status 0.
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil || !isClosed(p.exited) {
		return nil
	}
	return p.waitErr
}

// Starts is how many times the process has been started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Kill sends SIGKILL, as a crash would, and waits until the process is gone.
// Killing a process that is not running does nothing.
func (p *Proc) Kill() error { return p.signalAndWait(syscall.SIGKILL, 0) }

// Terminate asks the process to stop (SIGTERM) and waits up to grace, then
// kills it.
func (p *Proc) Terminate(grace time.Duration) error {
	return p.signalAndWait(syscall.SIGTERM, grace)
}

// Freeze stops the process with SIGSTOP: it holds its connections and
// answers nothing, like a process stuck in a long pause. It returns once
// every thread of the process has stopped (the signal is asynchronous: a
// process may still serve a request just after it was sent). Thaw resumes it.
func (p *Proc) Freeze() error {
	pid := p.PID()
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for !allThreadsStopped(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has not stopped 5s after SIGSTOP", p.Name)
		}
		time.Sleep(time.Millisecond) // polling the kernel's view: no event to wait on
	}
	return nil
}

// allThreadsStopped reports whether every thread of pid is in the stopped
// state (T) according to /proc; false when that cannot be read.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
		if err != nil {
			return false
		}
		// The state follows the command name's closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Thaw resumes a frozen process (SIGCONT).
func (p *Proc) Thaw() error { return p.signal(syscall.SIGCONT) }

func (p *Proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return fmt.Errorf("%s is not running", p.Name)
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.Name, err)
	}
	return nil
}

func (p *Proc) signalAndWait(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return nil
	}
	p.SampleRSS()
	_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen process cannot act on SIGTERM
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.Name, err)
	}
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		}
		_ = cmd.Process.Kill()
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s did not exit within 30s of SIGKILL", p.Name)
	}
}

// PID is the process id of the current incarnation; 0 when none runs.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.exited) {
		return 0
	}
	return p.cmd.Process.Pid
}

// SampleRSS reads the running incarnation's peak resident set (VmHWM) and
// keeps the highest seen. Usage calls it; call it also before anything that
// may end the process from outside.
func (p *Proc) SampleRSS() {
	pid := p.PID()
	if pid == 0 {
		return
	}
	hwm, err := readStatusKB(pid, "VmHWM:")
	if err != nil {
		return // the process went away between the two reads
	}
	p.mu.Lock()
	p.peakRSS = max(p.peakRSS, hwm*1024)
	p.mu.Unlock()
}

// Usage is what a process used over all its incarnations.
type Usage struct {
	PeakRSS int64         // bytes: the highest peak resident set of any incarnation
	CPU     time.Duration // user + system time, summed over incarnations
}

// Usage samples the running incarnation and returns the totals.
func (p *Proc) Usage() Usage {
	p.SampleRSS()
	pid := p.PID()
	var live time.Duration
	if pid != 0 {
		live, _ = readCPU(pid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Usage{PeakRSS: p.peakRSS, CPU: p.pastCPU + live}
}

// LogTail returns the last n lines of the process's log.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// LogPath is the file that collects every incarnation's output.
func (p *Proc) LogPath() string { return p.logPath }

func isClosed(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// readStatusKB reads a "kB" field of /proc/<pid>/status.
func readStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(field)); ok {
			f := strings.Fields(string(rest))
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTicks = 100

// readCPU reads a live process's user + system time from /proc/<pid>/stat.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')' are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
