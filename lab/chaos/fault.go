package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Action is what a fault does to its target.
type Action string

// Actions on a component's process.
const (
	// Kill sends SIGKILL, then starts the component again on its addresses.
	Kill Action = "kill"
	// Freeze sends SIGSTOP, waits a few seconds (Config.FreezeMin to
	// FreezeMax), then SIGCONT.
	Freeze Action = "freeze"
	// LongFreeze is Freeze held for Config.LongFreeze: longer than
	// Postgres's wal_sender_timeout (Config.WalSenderTimeout), so a frozen
	// relay's walsenders are ended, and than the client's request timeout,
	// so a frozen bff's answers come too late. Its target relay is
	// whichever relay streams, the standby after a failover.
	LongFreeze Action = "long-freeze"
	// Churn kills every instance of a service in turn (Config.Instances),
	// each started again at once, the next killed while the Key_Shared
	// subscription is still handing the keys back to the one before.
	Churn Action = "churn"
	// Failover kills whichever relay streams the sources, waits until the
	// standby has taken every source over, and starts the killed one again
	// as the new standby.
	Failover Action = "failover"
)

// Actions on Postgres.
const (
	// Crash stops Postgres as a crash would (immediate shutdown: no
	// checkpoint, crash recovery at start) and starts it again.
	Crash Action = "crash"
	// FastRestart stops Postgres with a fast shutdown (pg_ctl stop -m
	// fast: sessions ended, a checkpoint) and starts it again.
	FastRestart Action = "fast-restart"
	// Terminate ends Postgres sessions with pg_terminate_backend: the
	// relay's walsenders (target Walsenders) or every session of the
	// services' roles (target Sessions).
	Terminate Action = "terminate"
)

// Actions on a network link through a fault proxy (Stack.PostgresLink,
// Stack.BrokerLink), each held for a few seconds (as Freeze is) and then
// healed.
const (
	// Latency delays every byte both ways by Config.LinkLatency.
	Latency Action = "latency"
	// Blackhole forwards nothing either way and closes nothing: a
	// partition TCP has not noticed.
	Blackhole Action = "blackhole"
	// Reset resets every connection, and every new one while it lasts.
	Reset Action = "reset"
	// LoseReplies forwards requests and drops the servers' replies; healed,
	// the connections (whose byte streams lost frames) are reset.
	LoseReplies Action = "lose-replies"
)

// Targets that are not processes.
const (
	// Postgres is the database cluster.
	Postgres = "postgres"
	// Walsenders are the relay's replication sessions.
	Walsenders = "walsenders"
	// Sessions are the services' database sessions.
	Sessions = "sessions"
	// PostgresLink and BrokerLink are the network between the components
	// and Postgres, and the broker.
	PostgresLink = "postgres-link"
	BrokerLink   = "broker-link"
)

// Fault is one kind of injection: an action on a component (a procstack
// process name), on Postgres or its sessions, or on a link.
type Fault struct {
	Action Action `json:"action"`
	Target string `json:"target"`
}

func (f Fault) String() string { return string(f.Action) + " " + f.Target }

// ParseFault reads a fault as Fault.String writes it, e.g. "kill relay".
func ParseFault(s string) (Fault, error) {
	action, target, ok := strings.Cut(strings.TrimSpace(s), " ")
	f := Fault{Action(action), strings.TrimSpace(target)}
	if !ok || !slices.Contains(AllFaults(), f) {
		return Fault{}, fmt.Errorf("unknown fault %q (alpes chaos --help lists them)", s)
	}
	return f, nil
}

// components are the processes every stack runs.
var components = []string{"broker", "relay", "orders", "payments", "reporting", "bff"}

// ProcessFaults are the soak's first faults: SIGKILL and restart, and
// SIGSTOP then SIGCONT, of each component, and a Postgres crash.
func ProcessFaults() []Fault {
	var fs []Fault
	for _, a := range []Action{Kill, Freeze} {
		for _, p := range components {
			fs = append(fs, Fault{a, p})
		}
	}
	return append(fs, Fault{Crash, Postgres})
}

// NetworkFaults are latency, a blackhole, resets and lost replies on the
// link to Postgres and on the link to the broker.
func NetworkFaults() []Fault {
	var fs []Fault
	for _, link := range []string{PostgresLink, BrokerLink} {
		for _, a := range []Action{Latency, Blackhole, Reset, LoseReplies} {
			fs = append(fs, Fault{a, link})
		}
	}
	return fs
}

// PostgresFaults end the relay's walsenders and the services' sessions
// with pg_terminate_backend, and restart Postgres after a fast shutdown.
func PostgresFaults() []Fault {
	return []Fault{{Terminate, Walsenders}, {Terminate, Sessions}, {FastRestart, Postgres}}
}

// LongFreezes freeze the relay past wal_sender_timeout and the bff past
// the client's request timeout.
func LongFreezes() []Fault { return []Fault{{LongFreeze, "relay"}, {LongFreeze, "bff"}} }

// ScaleFaults churn the instances of orders and of payments and fail the
// relay over to its standby.
func ScaleFaults() []Fault {
	return []Fault{{Churn, "orders"}, {Churn, "payments"}, {Failover, "relay"}}
}

// AllFaults lists every fault the soak can inject.
func AllFaults() []Fault {
	return slices.Concat(ProcessFaults(), NetworkFaults(), PostgresFaults(), LongFreezes(), ScaleFaults())
}

// isLink reports whether f acts on a link.
func (f Fault) isLink() bool { return f.Target == PostgresLink || f.Target == BrokerLink }

// resource is what f disturbs: two faults of a pair never share one.
func (f Fault) resource() string {
	switch f.Target {
	case Walsenders, Sessions:
		return Postgres
	}
	return f.Target
}

// Injection is one fault as it was injected.
type Injection struct {
	Fault
	// With is the other fault of a pair, held at the same time (Config.Pairs).
	With string `json:"with,omitempty"`
	// At is when the injection began; Offset is At less the start of the load.
	At     time.Time     `json:"at"`
	Offset time.Duration `json:"offset_ns"`
	// Held is how long the fault lasted: from the signal to the component
	// serving again (restarted and ready, thawed, Postgres accepting).
	Held time.Duration `json:"held_ns"`
	// Observed is what the injection saw it do, the proof that the fault
	// struck: walsenders_ended, sessions_ended, links_reset, chunks_held,
	// chunks_delayed, reply_bytes_dropped, instances_killed,
	// takeover_ms. Missing keys are zero.
	Observed map[string]int64 `json:"observed,omitempty"`
	// Err is why the component could not be brought back, if it could not.
	Err string `json:"error,omitempty"`
}

func (in Injection) String() string {
	s := fmt.Sprintf("%s  +%7.1fs  %-24s held %s", in.At.Format("15:04:05.000"), in.Offset.Seconds(), in.Fault, in.Held.Round(time.Millisecond))
	if in.With != "" {
		s += "  with " + in.With
	}
	for _, k := range slices.Sorted(maps.Keys(in.Observed)) {
		s += fmt.Sprintf("  %s=%d", k, in.Observed[k])
	}
	if in.Err != "" {
		s += "  ERROR: " + in.Err
	}
	return s
}
