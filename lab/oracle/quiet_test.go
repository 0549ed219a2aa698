package oracle

import (
	"fmt"
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

// TestQuietWhileTheWALMovesOn: sweeps that delete nothing, heartbeats and
// checkpoints write WAL after the system has gone still, and a relay learns
// the WAL's end only from the keepalive it asks for with each status update
// (a second apart, two polls). So a slot lags the WAL by a poll or two
// however healthy its relay. The system is quiet once every slot has passed
// the WAL's end of the poll at which the counts took their values; a slot
// stuck before it never is.
func TestQuietWhileTheWALMovesOn(t *testing.T) {
	counts := func(outbox int64) map[string]int64 {
		return map[string]int64{"outbox events": outbox, "inbox payments": outbox}
	}
	lsn := func(i int) string { return fmt.Sprintf("0/%X", 0x1000000+0x100*i) }
	// Each poll i reads the WAL's end lsn(i) and slots that confirmed
	// lsn(i-2); the counts stop moving at poll 3.
	run := func(stuckAt int) (quietAt int) {
		w := stillness{consumed: map[string][]string{"payments": {"events"}}}
		for i := range 12 {
			c := counts(int64(min(i, 3)))
			behind := lsn(max(i-2, 0))
			slots := []slotState{{name: "a", confirmed: behind}, {name: "b", confirmed: behind}, {name: "c", confirmed: behind}}
			if stuckAt >= 0 {
				slots[2].confirmed = lsn(min(stuckAt, i))
			}
			if w.observe(c, lsn(i), slots) == "" {
				return i
			}
		}
		return -1
	}
	// Counts took their final values at poll 3 (WAL end lsn(3)); poll 4
	// sees them unchanged, and the slots reach lsn(3) at poll 5.
	if got := run(-1); got != 5 {
		t.Errorf("quiet at poll %d, want 5: the slots follow the WAL two polls behind", got)
	}
	if got := run(2); got != -1 {
		t.Errorf("quiet at poll %d with slot c stuck at the WAL's end of poll 2, before the counts went still", got)
	}
}
