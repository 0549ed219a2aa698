package oracle

import (
	"maps"
	"strings"
	"testing"
)

// TestQuietnessSaysWhatStillMoves checks each reason the wait for quiet
// keeps waiting for, alone: a quiet system has none, and each change to it is
// named.
func TestQuietnessSaysWhatStillMoves(t *testing.T) {
	consumed := map[string][]string{"payments": {"events"}}
	type state struct {
		counts, prev map[string]int64
		slots        []slotState
		target       string
	}
	quiet := func() state {
		counts := map[string]int64{"outbox events": 5, "inbox payments": 5, "in flight orders": 0}
		return state{counts: counts, prev: maps.Clone(counts), target: "0/16B3F00",
			slots: []slotState{{name: "a", caughtUp: true}, {name: "b", caughtUp: true}, {name: "c", caughtUp: true}}}
	}
	for _, c := range []struct {
		name   string
		change func(*state)
		says   string // "" for quiet
	}{
		{"quiet", func(*state) {}, ""},
		{"an inbox behind", func(s *state) { s.counts["inbox payments"], s.prev["inbox payments"] = 4, 4 }, "payments's inbox holds 4 of 5 events"},
		{"an order in flight", func(s *state) { s.counts["in flight orders"], s.prev["in flight orders"] = 1, 1 }, "in flight orders: 1"},
		{"no WAL position yet", func(s *state) { s.target = "" }, "no WAL position to reach yet"},
		{"a relay slot missing", func(s *state) { s.slots = s.slots[:2] }, "2 relay slots, want 3"},
		{"a slot behind", func(s *state) { s.slots[1] = slotState{name: "b", confirmed: "0/1", target: "0/2"} }, "slot b at 0/1, behind 0/2"},
		{"counts still moving", func(s *state) { s.prev["outbox events"] = 4 }, "counts still moving"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := quiet()
			c.change(&s)
			why := quietness(consumed, s.counts, s.prev, s.slots, s.target)
			if (c.says == "") != (why == "") || !strings.Contains(why, c.says) {
				t.Errorf("quietness = %q, want %q", why, c.says)
			}
		})
	}
}
