package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
)

// TestProfileUnderLoad runs the whole stack in this process under open-loop
// load from the fake-data client and writes a CPU profile and an allocation
// profile of the run, plus the CPU time each Postgres database's backends
// used (they are other processes, absent from the Go profiles).
// docs/profiles.md reads them.
//
// It is a measuring tool, not a test: it runs only when ALPES_PROFILE_DIR
// names the directory for its output, and asserts nothing about speed.
//
//	ALPES_PROFILE_DIR=/tmp/prof ALPES_PROFILE_RATE=800 ALPES_PROFILE_DURATION=25s \
//	    go test ./lab/devstack/ -run '^TestProfileUnderLoad$' -count=1 -v -timeout 20m
func TestProfileUnderLoad(t *testing.T) {
	dir := os.Getenv("ALPES_PROFILE_DIR")
	if dir == "" {
		t.Skip("a profiling harness: set ALPES_PROFILE_DIR (and optionally ALPES_PROFILE_RATE, ALPES_PROFILE_DURATION) to run it")
	}
	rate := 800.0
	if s := os.Getenv("ALPES_PROFILE_RATE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("ALPES_PROFILE_RATE=%q: want a positive number", s)
		}
		rate = v
	}
	duration := 25 * time.Second
	if s := os.Getenv("ALPES_PROFILE_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			t.Fatalf("ALPES_PROFILE_DURATION=%q: want a positive duration", s)
		}
		duration = v
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := startStack(t)
	bff := urlAfter(t, out, "Public API (bff):")
	ctx := context.Background()

	// A short warm-up fills connection pools, statement caches and producers,
	// so that the profile is of the steady state.
	if _, err := loadgen.Run(ctx, loadgen.Config{BFFURL: bff, Rate: 100, Count: 200, Seed: 1, OutcomeWait: time.Minute}); err != nil {
		t.Fatalf("warm-up: %v", err)
	}

	cpuFile, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer cpuFile.Close()
	pgBefore := postgresCPUByDatabase(t)
	var msBefore runtime.MemStats
	runtime.ReadMemStats(&msBefore)
	cpuBefore := processCPU(t)
	if err := pprof.StartCPUProfile(cpuFile); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, runErr := loadgen.Run(ctx, loadgen.Config{BFFURL: bff, Rate: rate, Duration: duration, Seed: 42, OutcomeWait: time.Minute})
	pprof.StopCPUProfile()
	wall := time.Since(start)
	pgAfter := postgresCPUByDatabase(t)
	var msAfter runtime.MemStats
	runtime.ReadMemStats(&msAfter)
	goCPU := processCPU(t) - cpuBefore

	// The allocation profile covers the process's life; alloc_space is what
	// the text reads (the warm-up is a small share of it).
	memFile, err := os.Create(filepath.Join(dir, "mem.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer memFile.Close()
	if err := pprof.Lookup("allocs").WriteTo(memFile, 0); err != nil {
		t.Fatal(err)
	}

	var report strings.Builder
	s, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Fprintf(&report, "rate %.0f/s for %s (wall %s), client error: %v\nsummary: %s\n", rate, duration, wall.Round(time.Millisecond), runErr, s)
	perOrder := func(d time.Duration) float64 {
		if sum.Accepted == 0 {
			return 0
		}
		return d.Seconds() / float64(sum.Accepted) * 1e6
	}
	fmt.Fprintf(&report, "this process (services, relay, broker, client): %.2f s CPU, %.1f µs/order\n", goCPU.Seconds(), perOrder(goCPU))
	fmt.Fprintf(&report, "Go heap: %.1f MB allocated, %d objects, %d GCs during the run\n",
		float64(msAfter.TotalAlloc-msBefore.TotalAlloc)/1e6, msAfter.Mallocs-msBefore.Mallocs, msAfter.NumGC-msBefore.NumGC)
	fmt.Fprintf(&report, "Postgres CPU by database during the run (s), per accepted order (µs):\n")
	dbs := make([]string, 0, len(pgAfter))
	for db := range pgAfter {
		dbs = append(dbs, db)
	}
	sort.Strings(dbs)
	var pgTotal time.Duration
	for _, db := range dbs {
		d := pgAfter[db] - pgBefore[db]
		pgTotal += d
		fmt.Fprintf(&report, "  %-24s %6.2f s  %7.1f µs/order\n", db, d.Seconds(), perOrder(d))
	}
	fmt.Fprintf(&report, "  %-24s %6.2f s  %7.1f µs/order\n", "all of Postgres", pgTotal.Seconds(), perOrder(pgTotal))
	t.Log("\n" + report.String())
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(report.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// postgresCPUByDatabase sums the user and system CPU time of the running
// Postgres processes by what their process title names: the database of a
// backend ("postgres: user db host(port) state"), or the kind of an
// auxiliary process (walsender, walwriter, checkpointer, …). Processes that
// ended between two readings are missed; the services' pools keep theirs.
func postgresCPUByDatabase(t *testing.T) map[string]time.Duration {
	t.Helper()
	const ticks = 100 // USER_HZ on Linux
	out := map[string]time.Duration{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Logf("reading /proc: %v", err)
		return out
	}
	parents := map[int]int{} // pid → ppid, of every process
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 {
			parents[pid], _ = strconv.Atoi(f[1])
		}
	}
	self := os.Getpid()
	ours := func(pid int) bool { // a descendant of this process: the stack's cluster, not another test's
		for i := 0; i < 64 && pid > 1; i++ {
			if pid = parents[pid]; pid == self {
				return true
			}
		}
		return false
	}
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err != nil || !ours(pid) {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") {
			continue
		}
		pid, _ := strconv.Atoi(p.Name())
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		title := strings.Fields(strings.TrimRight(strings.TrimPrefix(string(cmd), "postgres: "), "\x00"))
		key := strings.Join(title, " ")
		if i := slices.IndexFunc(title, func(f string) bool { return strings.Contains(f, "(") }); i >= 2 {
			key = "backend " + title[i-1] // the database, before host(port)
			if title[0] == "walsender" {
				key = "walsender " + title[i-1] // the role
			}
		}
		out[key] += time.Duration(utime+stime) * time.Second / ticks
	}
	return out
}

// processCPU is the user and system CPU time this process has used.
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Logf("getrusage: %v", err)
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statFields is /proc/<pid>/stat after the command's closing parenthesis:
// the state, then the parent's pid, …; utime is the 12th, stime the 13th.
func statFields(pid int) []string {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
}
