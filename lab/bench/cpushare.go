package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cfsPeriod is the period of the CPU bandwidth limit: a process held to a
// share s of one core runs at most s × cfsPeriod in every period.
const cfsPeriod = 100 * time.Millisecond

// cpuGroups holds processes to a fixed share of one core each, every
// process in a CPU cgroup of its own: cgroup v1's cpu controller
// (cpu.cfs_quota_us over cpu.cfs_period_us) where it is mounted, else
// cgroup v2's cpu.max. The groups are made under this process's own
// cgroup, so that any limit on it still applies; remove takes them away
// again.
type cpuGroups struct {
	version int    // 1 or 2
	parent  string // the directory the groups are made in
	prefix  string // of every group's name, unique to this process
	dirs    []string
}

// newCPUGroups finds a writable CPU controller, or says why there is none.
func newCPUGroups() (*cpuGroups, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mounts: %w", err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading this process's cgroups: %w", err)
	}
	g := &cpuGroups{prefix: fmt.Sprintf("alpes-bench-%d-", os.Getpid())}
	var why []string
	for _, v := range []struct {
		version int
		absent  string
	}{{1, "no cgroup v1 cpu controller is mounted"}, {2, "no cgroup v2 hierarchy is mounted"}} {
		dir, ok := cgroupDir(mounts, own, v.version)
		if !ok {
			why = append(why, v.absent)
			continue
		}
		g.version, g.parent = v.version, dir
		err := g.writable()
		if err == nil {
			return g, nil
		}
		why = append(why, err.Error())
	}
	return nil, errors.New(strings.Join(why, "; "))
}

// cgroupDir is the directory of this process's cgroup in the hierarchy of
// the given version that holds the cpu controller (any cgroup2 mount for
// version 2), from /proc/self/mountinfo and /proc/self/cgroup.
func cgroupDir(mountinfo, own []byte, version int) (string, bool) {
	for line := range bytes.Lines(mountinfo) {
		// ID parent major:minor root mountpoint options [optional…] - fstype source super-options
		pre, post, ok := strings.Cut(strings.TrimSpace(string(line)), " - ")
		if !ok {
			continue
		}
		f, tail := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(tail) < 3 {
			continue
		}
		root, mountpoint := f[3], f[4]
		switch {
		case version == 1 && tail[0] == "cgroup" && slices.Contains(strings.Split(tail[2], ","), "cpu"):
		case version == 2 && tail[0] == "cgroup2":
		default:
			continue
		}
		path, ok := ownCgroup(own, version)
		if !ok {
			return "", false
		}
		// A mount may show only a subtree of the hierarchy (a container's).
		rel, ok := strings.CutPrefix(path, root)
		if !ok {
			rel = "/"
		}
		return filepath.Join(mountpoint, rel), true
	}
	return "", false
}

// ownCgroup is this process's cgroup path in the v1 hierarchy of the cpu
// controller, or in the v2 hierarchy.
func ownCgroup(own []byte, version int) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(own))
	for sc.Scan() {
		// hierarchy-ID:controllers:path; v2's line is 0::path.
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if version == 1 && slices.Contains(strings.Split(f[1], ","), "cpu") || version == 2 && f[0] == "0" && f[1] == "" {
			return f[2], true
		}
	}
	return "", false
}

// writable makes and removes a group, enabling the cpu controller for the
// groups first on cgroup v2.
func (g *cpuGroups) writable() error {
	if g.version == 2 {
		controllers, err := os.ReadFile(filepath.Join(g.parent, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("cgroup v2 at %s: %w", g.parent, err)
		}
		if !slices.Contains(strings.Fields(string(controllers)), "cpu") {
			return fmt.Errorf("cgroup v2 at %s does not offer the cpu controller", g.parent)
		}
		// The groups made here get cpu.max only when their parent hands the
		// controller down; a cgroup that holds processes and is not the
		// root cannot (the kernel answers EBUSY).
		if err := os.WriteFile(filepath.Join(g.parent, "cgroup.subtree_control"), []byte("+cpu"), 0); err != nil {
			return fmt.Errorf("cgroup v2 at %s: enabling the cpu controller for its children: %w", g.parent, err)
		}
	}
	probe := filepath.Join(g.parent, g.prefix+"probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Errorf("cgroup v%d at %s: %w", g.version, g.parent, err)
	}
	quota := g.quotaFile()
	_, err := os.Stat(filepath.Join(probe, quota))
	if rmErr := os.Remove(probe); rmErr != nil {
		return errors.Join(err, rmErr)
	}
	if err != nil {
		return fmt.Errorf("cgroup v%d at %s has no %s: %w", g.version, g.parent, quota, err)
	}
	return nil
}

func (g *cpuGroups) quotaFile() string {
	if g.version == 1 {
		return "cpu.cfs_quota_us"
	}
	return "cpu.max"
}

// String names the controller, for the report.
func (g *cpuGroups) String() string {
	if g.version == 1 {
		return "cgroup v1's cpu controller, cpu.cfs_quota_us over cpu.cfs_period_us, in " + g.parent
	}
	return "cgroup v2's cpu.max, in " + g.parent
}

// limit makes a group called name, limits it to share of one core and
// moves the process pid, all its threads, into it.
func (g *cpuGroups) limit(name string, pid int, share float64) error {
	period := cfsPeriod.Microseconds()
	quota := int64(math.Round(share * float64(period)))
	if quota < 1000 {
		return fmt.Errorf("a share of %.4f core is a quota of %d µs per %s, under the kernel's 1 ms", share, quota, cfsPeriod)
	}
	dir := filepath.Join(g.parent, g.prefix+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("making cgroup %s: %w", dir, err)
	}
	g.dirs = append(g.dirs, dir)
	var writes [][2]string
	if g.version == 1 {
		writes = [][2]string{{"cpu.cfs_period_us", strconv.FormatInt(period, 10)}, {"cpu.cfs_quota_us", strconv.FormatInt(quota, 10)}}
	} else {
		writes = [][2]string{{"cpu.max", fmt.Sprintf("%d %d", quota, period)}}
	}
	writes = append(writes, [2]string{"cgroup.procs", strconv.Itoa(pid)})
	for _, w := range writes {
		if err := os.WriteFile(filepath.Join(dir, w[0]), []byte(w[1]), 0); err != nil {
			return fmt.Errorf("writing %s of %s: %w", w[0], dir, err)
		}
	}
	return nil
}

// remove moves whatever still runs in the groups back to their parent and
// removes them. Safe to call more than once.
func (g *cpuGroups) remove() error {
	if g == nil {
		return nil
	}
	var errs []error
	for _, dir := range g.dirs {
		if err := g.removeOne(dir); err != nil {
			errs = append(errs, err)
		}
	}
	g.dirs = nil
	return errors.Join(errs...)
}

func (g *cpuGroups) removeOne(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(procs)) {
				// A process may exit meanwhile (ESRCH): it leaves the group anyway.
				_ = os.WriteFile(filepath.Join(g.parent, "cgroup.procs"), []byte(pid), 0)
			}
		}
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		// A process that has just exited leaves its group when it is reaped.
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond) // polling the kernel's view: no event to wait on
	}
}
