package bench

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseCPULine(t *testing.T) {
	got, err := parseCPULine("cpu  100 5 50 800 40 3 2 0 7 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.idle != 800 || got.total != 1000 {
		t.Errorf("parsed %+v, want idle 800 of 1000 (guest columns not added again)", got)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 3 x 5 6 7 8"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q) took it", bad)
		}
	}
}

func TestIdleShare(t *testing.T) {
	got, err := idleShare(cpuTimes{idle: 800, total: 1000}, cpuTimes{idle: 890, total: 1200})
	if err != nil || got != 0.45 {
		t.Errorf("idleShare = %v, %v; want 0.45", got, err)
	}
	if _, err := idleShare(cpuTimes{idle: 800, total: 1000}, cpuTimes{idle: 800, total: 1000}); err == nil {
		t.Error("no ticks between the samples: want an error")
	}
}

// Spinning on every core keeps the box busy: settle must not call it quiet,
// and must give up after SettleMax.
func TestSettleGivesUpOnABusyBox(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.NumCPU()))
	var stop atomic.Bool
	defer stop.Store(true)
	for range runtime.NumCPU() {
		go func() {
			for !stop.Load() {
			}
		}()
	}
	r := &runner{opts: Options{Sizes: Sizes{SettleMax: 3 * time.Second}}, out: testWriter{t}}
	start := time.Now()
	s := r.settle(context.Background(), "X")
	if s == nil || s.Quiet || s.Idle >= settleIdle {
		t.Fatalf("settled %+v with every core spinning: want not quiet", s)
	}
	if took := time.Since(start); took > 3*time.Second+settleSample {
		t.Errorf("settle took %s, want it to give up after SettleMax (3s) and at most one more sample", took)
	}
	if r := (&runner{opts: Options{Sizes: Sizes{}}}).settle(context.Background(), "X"); r != nil {
		t.Errorf("settle with SettleMax 0 = %+v, want nil (no wait)", r)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
