package faultproxy

import (
	"fmt"
	"time"
)

// kind names what a Mode does; the zero kind is pass, so the zero Mode is Pass.
type kind uint8

const (
	kindPass kind = iota
	kindLatency
	kindBlackhole
	kindDropReplies
	kindReset
	kindRefuse
)

// Mode is a behaviour of a Proxy, set with Proxy.SetMode. Modes are small
// comparable values; the zero Mode is Pass.
//
// Two things are governed by a mode: what happens to new connections at the
// listener, and what happens to the bytes of connections already open. Only
// data and the orderly end of a stream (FIN) are subject to the mode: when
// either peer resets its connection, or a write to it fails, the proxy resets
// the other side at once, whatever the mode.
type Mode struct {
	kind  kind
	delay time.Duration
}

var (
	// Pass forwards bytes both ways as soon as they are read.
	Pass = Mode{kind: kindPass}

	// Blackhole is a partition that TCP has not noticed yet: connections stay
	// open, new ones are accepted (and the target dialled), but nothing is
	// forwarded in either direction, not even an orderly close. Peers see
	// silence, not errors.
	//
	// Data is held, not discarded: each direction of a connection reads at most
	// a few chunks (128 KiB) and then stops reading, so the kernel's windows
	// fill and senders block. When the mode changes again, the held data is
	// delivered in order, as after a partition that heals before TCP gives up.
	Blackhole = Mode{kind: kindBlackhole}

	// DropReplies forwards client→server bytes and discards server→client
	// bytes: requests arrive, receipts are lost. Discarded bytes are read and
	// thrown away at once (counted in Stats.Dropped), so the server never
	// blocks and nothing is buffered. An orderly close from the server is still
	// forwarded.
	DropReplies = Mode{kind: kindDropReplies}

	// Reset resets every open connection (RST: linger 0, then close) when the
	// mode is set, and resets every new connection as soon as it is accepted.
	Reset = Mode{kind: kindReset}

	// Refuse closes the listener, so new connections are refused by the
	// kernel (ECONNREFUSED). Open connections are left alone: they keep the
	// mode that was in effect before Refuse (combine with ResetAll, or set
	// Blackhole first, to fault them too). Setting any other mode opens the
	// listener again on the same address.
	Refuse = Mode{kind: kindRefuse}
)

// Latency delays every chunk of bytes, in both directions, until d after the
// proxy read it, preserving order. Each direction of a connection holds at
// most a few chunks in flight, so throughput is bounded by roughly 128 KiB
// per d. Bytes held longer than d (in a Blackhole, say) go at once when
// Latency is set. Latency(d) with d <= 0 is Pass.
func Latency(d time.Duration) Mode {
	if d <= 0 {
		return Pass
	}
	return Mode{kind: kindLatency, delay: d}
}

// String returns the mode's name, such as "pass" or "latency(50ms)".
func (m Mode) String() string {
	switch m.kind {
	case kindPass:
		return "pass"
	case kindLatency:
		return fmt.Sprintf("latency(%v)", m.delay)
	case kindBlackhole:
		return "blackhole"
	case kindDropReplies:
		return "drop-replies"
	case kindReset:
		return "reset"
	case kindRefuse:
		return "refuse"
	}
	return fmt.Sprintf("mode(%d)", m.kind)
}
