package relay

import (
	"testing"

	"github.com/google/uuid"
)

// The lane of an aggregate is part of the wire contract (lanes.go): these
// values, computed apart from the code with a reference FNV-1a, must never
// change.
func TestLaneOfIsStable(t *testing.T) {
	for id, want := range map[string]int{
		"":                                     5,
		"order-1":                              13,
		"01935e1a-2b3c-7d4e-8f10-213243546576": 13,
		"01935e1a-2b3c-7d4e-8f10-213243546577": 26,
	} {
		if got := laneOf(id); got != want {
			t.Errorf("laneOf(%q) = %d, want %d", id, got, want)
		}
	}
	if laneKeys[0] != "lane-00" || laneKeys[laneCount-1] != "lane-31" {
		t.Errorf("lane keys %q … %q", laneKeys[0], laneKeys[laneCount-1])
	}
}

// Aggregate ids (UUIDs, as the services make them) spread evenly over the
// lanes: each lane within a fifth of its share of 32,000 ids (over six
// standard deviations).
func TestLanesSpreadAggregates(t *testing.T) {
	var counts [laneCount]int
	const n = 32_000
	for range n {
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		counts[laneOf(id.String())]++
	}
	for lane, c := range counts {
		if share := n / laneCount; c < share*4/5 || c > share*6/5 {
			t.Errorf("lane %d holds %d of %d ids, want about %d", lane, c, n, share)
		}
	}
}
