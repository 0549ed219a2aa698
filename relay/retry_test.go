package relay

import (
	"testing"
	"time"
)

// TestRetryDelayResetsAfterProgress: sessions that keep failing without
// progress back off to maxRetryDelay, and one that confirmed a new position
// brings the next retry back to minRetryDelay. Before, only a session that
// had run for a minute reset the delay, so a relay hit by several short
// network faults in a row sat out seconds between them publishing nothing.
func TestRetryDelayResetsAfterProgress(t *testing.T) {
	var r retryDelay
	var got []time.Duration
	for range 8 {
		got = append(got, r.next(false))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, maxRetryDelay, maxRetryDelay}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays without progress %v, want %v", got, want)
		}
	}
	if d := r.next(true); d != minRetryDelay {
		t.Errorf("after a session that made progress: %s, want %s", d, minRetryDelay)
	}
	if d := r.next(false); d != 2*minRetryDelay {
		t.Errorf("then a failure without progress: %s, want %s", d, 2*minRetryDelay)
	}
}
