package chaos_test

import (
	"testing"

	"github.com/alpes/alpes/lab/chaos"
)

// TestNetworkFaults injects, one at a time, each fault of the links
// between the components and Postgres and the broker: latency, a
// blackhole, resets and lost replies, each held a second or two through
// the stack's fault proxies and then healed (lost replies end with the
// connections reset). The oracle must find nothing, and each proxy must
// have counted what its fault did: chunks delayed or held, connections
// reset, reply bytes dropped.
func TestNetworkFaults(t *testing.T) {
	rep := shortSoak(t, chaos.NetworkFaults(), nil)
	requireObserved(t, rep, "chunks_delayed", action(chaos.Latency))
	requireObserved(t, rep, "chunks_held", action(chaos.Blackhole))
	requireObserved(t, rep, "links_reset", action(chaos.Reset))
	requireObserved(t, rep, "reply_bytes_dropped", action(chaos.LoseReplies))
}
