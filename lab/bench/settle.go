package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Settled is how the box was when a scenario began: each scenario waits
// until what the one before it left behind has passed (a stack's last
// checkpoint, the page cache's dirty pages, a JVM's exit), so that no
// scenario measures its predecessor's aftermath.
type Settled struct {
	Scenario string        `json:"scenario"`
	Waited   time.Duration `json:"waited_ns"`
	// Idle is the share of the CPUs' time spent idle over the last sample
	// (I/O wait counts as busy), 0 to 1.
	Idle float64 `json:"idle"`
	// Quiet is whether Idle reached settleIdle within Sizes.SettleMax.
	Quiet bool `json:"quiet"`
}

const (
	// settleIdle is the idle share over one settleSample that counts as a
	// quiet box: a 2-core machine with nothing but its own housekeeping
	// runs at 97–99 %.
	settleIdle   = 0.90
	settleSample = 2 * time.Second
)

// settle flushes the page cache's dirty pages to disk (sync) and then
// samples the CPUs until they are quiet or Sizes.SettleMax has passed. It
// does nothing when SettleMax is 0 (the smoke test's sizes).
func (r *runner) settle(ctx context.Context, scenario string) *Settled {
	max := r.opts.Sizes.SettleMax
	if max <= 0 {
		return nil
	}
	start := time.Now()
	syscall.Sync()
	s := &Settled{Scenario: scenario}
	for ctx.Err() == nil {
		idle, err := idleOver(ctx, settleSample)
		if err != nil {
			r.printf("   cannot tell whether the box is quiet: %v", err)
			break
		}
		s.Idle = idle
		if idle >= settleIdle {
			s.Quiet = true
			break
		}
		if time.Since(start)+settleSample > max {
			break
		}
	}
	s.Waited = time.Since(start)
	if s.Quiet {
		r.printf("   box quiet after %s (%.0f %% idle)", s.Waited.Round(100*time.Millisecond), 100*s.Idle)
	} else {
		r.printf("   box not quiet after %s (%.0f %% idle): measuring anyway", s.Waited.Round(100*time.Millisecond), 100*s.Idle)
	}
	return s
}

// idleOver returns the share of the CPUs' time spent idle over d, from
// /proc/stat.
func idleOver(ctx context.Context, d time.Duration) (float64, error) {
	before, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	after, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	return idleShare(before, after)
}

// cpuTimes are the aggregate CPU counters of /proc/stat, in clock ticks.
type cpuTimes struct{ idle, total uint64 }

func readCPUTimes() (cpuTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return cpuTimes{}, fmt.Errorf("reading /proc/stat: %w", err)
	}
	return parseCPULine(line)
}

// parseCPULine reads /proc/stat's first line: "cpu" and the ticks spent in
// user, nice, system, idle, iowait, irq, softirq, steal (guest time is
// inside user and nice already, so the columns after steal are not added).
func parseCPULine(line string) (cpuTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat begins %q, not the aggregate cpu line", line)
	}
	var t cpuTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t.total += n
		if i == 3 {
			t.idle = n
		}
	}
	return t, nil
}

// idleShare is the share of the ticks between two readings spent idle.
func idleShare(before, after cpuTimes) (float64, error) {
	if after.total <= before.total || after.idle < before.idle {
		return 0, errors.New("/proc/stat's counters did not advance")
	}
	return float64(after.idle-before.idle) / float64(after.total-before.total), nil
}
