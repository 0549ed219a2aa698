package faultproxy

import (
	"testing"
	"time"
)

// TestStatsCountWhatEachFaultDid checks the counters a soak reads as proof
// that a fault was really applied: chunks Latency delayed, chunks Blackhole
// held, connections Reset cut (open ones and those accepted while it
// lasts). Pass moves bytes without touching any of them.
func TestStatsCountWhatEachFaultDid(t *testing.T) {
	srv := startEcho(t)
	p := New(t, srv.addr)
	c := dial(t, p.Addr())
	roundTrip(t, c, "pass")
	if s := p.Stats(); s.Delayed != 0 || s.Held != 0 || s.Resets != 0 {
		t.Fatalf("after a round trip in pass: %+v, want no fault counted", s)
	}

	setMode(t, p, Latency(20*time.Millisecond))
	roundTrip(t, c, "slow")
	if s := p.Stats(); s.Delayed != 2 { // the request and its echo
		t.Errorf("Delayed = %d after a round trip under latency, want 2", s.Delayed)
	}

	setMode(t, p, Blackhole)
	send(t, c, "held")
	waitFor(t, "the request to be held", func() bool { return p.Stats().Held == 1 })
	setMode(t, p, Pass)
	expect(t, c, "held")
	if s := p.Stats(); s.Held != 1 { // the echo left the server after the switch
		t.Errorf("Held = %d, want 1: the request", s.Held)
	}

	setMode(t, p, Reset)
	expectReset(t, c)
	expectDialReset(t, p.Addr())
	waitFor(t, "the open link and the new connection counted as reset", func() bool { return p.Stats().Resets == 2 })
}
