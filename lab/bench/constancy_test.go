package bench

import (
	"testing"
	"time"
)

// TestBackgroundWorkIsCountedInTheWindowItBeganIn: the cumulative counts
// sampled every second become per-window counts, each increase in the
// window of the sample that first shows it, and a counter that went
// backwards (a statistics reset) counts nothing.
func TestBackgroundWorkIsCountedInTheWindowItBeganIn(t *testing.T) {
	samples := []ConstSample{
		{Seconds: 1, Checkpoints: 4, Autovacuums: 10}, // before anything: the baseline
		{Seconds: 2, Checkpoints: 4, Autovacuums: 12},
		{Seconds: 9.9, Checkpoints: 5, Autovacuums: 12},
		{Seconds: 10.1, Checkpoints: 5, Autovacuums: 15},
		{Seconds: 15, Checkpoints: 0, Autovacuums: 0}, // reset
		{Seconds: 25, Checkpoints: 1, Autovacuums: 1},
		{Seconds: 31, Checkpoints: 3, Autovacuums: 1}, // past the last window
	}
	windows := make([]ConstWindow, 3)
	backgroundPerWindow(samples, 10*time.Second, windows)
	want := []struct{ checkpoints, autovacuums int64 }{{1, 2}, {0, 3}, {1, 1}}
	for k, w := range want {
		if windows[k].Checkpoints != w.checkpoints || windows[k].Autovacuums != w.autovacuums {
			t.Errorf("window %d: %d checkpoints, %d autovacuums; want %d, %d",
				k+1, windows[k].Checkpoints, windows[k].Autovacuums, w.checkpoints, w.autovacuums)
		}
	}
}
