package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// Machine describes where the figures were measured.
type Machine struct {
	Cores      int    `json:"cores"`
	CPUModel   string `json:"cpu_model"`
	MemoryKB   int64  `json:"memory_kb"`
	Kernel     string `json:"kernel"`
	Postgres   string `json:"postgres"`
	Go         string `json:"go"`
	GitCommit  string `json:"git_commit"`
	GitDirty   bool   `json:"git_dirty"`
	LoadBefore string `json:"load_before"` // /proc/loadavg at the start
	LoadAfter  string `json:"load_after"`
	// Pulsar is the Apache Pulsar release B and broker also run on, and
	// Java the JVM that runs it (`java -version`'s first line).
	Pulsar string `json:"pulsar"`
	Java   string `json:"java"`
}

func readMachine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: readLoadAvg(),
		Pulsar: pulsarstandalone.DefaultVersion, Java: javaVersion(ctx)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, ok := meminfoKB("MemTotal:"); ok {
		m.MemoryKB = kb
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if dir, err := pgcluster.FindBinDir(); err == nil {
		if out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version").Output(); err == nil {
			m.Postgres = strings.TrimSpace(string(out))
		}
	}
	m.GitCommit, m.GitDirty = gitRevision(ctx)
	return m
}

// gitRevision is the build's VCS revision, or the working tree's when the
// binary carries none (go run).
func gitRevision(ctx context.Context) (string, bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			return rev, dirty
		}
	}
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	status, _ := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(bytes.TrimSpace(status)) > 0
}

func readLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func meminfoKB(field string) (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// selfCPU is the user + system CPU time this process has used: the load
// generator, the polling baseline and the in-process broker.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat returns fields of /proc/<pid>/stat after the command name:
// index 0 is the state (field 3 of proc(5)).
func procStat(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(string(b[i+1:]))
	return f, len(f) >= 15
}

func ticks(fields []string, idx ...int) time.Duration {
	var sum int64
	for _, i := range idx {
		v, _ := strconv.ParseInt(fields[i], 10, 64)
		sum += v
	}
	return time.Duration(sum) * time.Second / clockTicks
}

// postgresCPU is the CPU time of a whole Postgres cluster so far: the
// postmaster, its children that have exited (cutime, cstime), and its live
// children (backends, walsenders, the checkpointer, the WAL writer …).
// Zero when the postmaster cannot be found.
func postgresCPU(c *pgcluster.Cluster) time.Duration {
	b, err := os.ReadFile(filepath.Join(c.DataDir(), "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	f, ok := procStat(pm)
	if !ok {
		return 0
	}
	// After the name: ppid is index 1; utime, stime, cutime, cstime 11–14.
	total := ticks(f, 11, 12, 13, 14)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return total
	}
	parent := strconv.Itoa(pm)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cf, ok := procStat(pid); ok && cf[1] == parent {
			total += ticks(cf, 11, 12)
		}
	}
	return total
}
