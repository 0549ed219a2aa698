package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/alpes/alpes/internal/procstack"
)

// Action is what a fault does to its target.
type Action string

const (
	// Kill sends SIGKILL, then starts the component again on its addresses.
	Kill Action = "kill"
	// Freeze sends SIGSTOP, waits a few seconds, then SIGCONT.
	Freeze Action = "freeze"
	// Crash stops Postgres as a crash would (immediate shutdown: no
	// checkpoint, crash recovery at start) and starts it again.
	Crash Action = "crash"
)

// Postgres is the target name of the database cluster.
const Postgres = "postgres"

// Fault is one kind of injection: an action on a component (a procstack
// process name, or Postgres).
type Fault struct {
	Action Action `json:"action"`
	Target string `json:"target"`
}

func (f Fault) String() string { return string(f.Action) + " " + f.Target }

// AllFaults lists every fault the soak injects: SIGKILL and restart, and
// SIGSTOP then SIGCONT, of each component, and a Postgres crash.
func AllFaults() []Fault {
	var fs []Fault
	for _, a := range []Action{Kill, Freeze} {
		for _, p := range []string{"broker", "relay", "orders", "payments", "reporting", "bff"} {
			fs = append(fs, Fault{a, p})
		}
	}
	return append(fs, Fault{Crash, Postgres})
}

// Injection is one fault as it was injected.
type Injection struct {
	Fault
	// At is when the injection began; Offset is At less the start of the load.
	At     time.Time     `json:"at"`
	Offset time.Duration `json:"offset_ns"`
	// Held is how long the fault lasted: from the signal to the component
	// serving again (restarted and ready, thawed, Postgres accepting).
	Held time.Duration `json:"held_ns"`
	// Err is why the component could not be brought back, if it could not.
	Err string `json:"error,omitempty"`
}

func (in Injection) String() string {
	s := fmt.Sprintf("%s  +%7.1fs  %-16s held %s", in.At.Format("15:04:05.000"), in.Offset.Seconds(), in.Fault, in.Held.Round(time.Millisecond))
	if in.Err != "" {
		s += "  ERROR: " + in.Err
	}
	return s
}

// deck deals faults in shuffled rounds: each round holds every fault once,
// so that n rounds inject each fault n times, in an order the seed decides.
type deck struct {
	rng    *rand.Rand
	faults []Fault
	left   []Fault
}

func (d *deck) next() Fault {
	if len(d.left) == 0 {
		d.left = append(d.left[:0], d.faults...)
		d.rng.Shuffle(len(d.left), func(i, j int) { d.left[i], d.left[j] = d.left[j], d.left[i] })
	}
	f := d.left[0]
	d.left = d.left[1:]
	return f
}

// inject applies f to the stack and brings the target back: freeze holds the
// process stopped for hold. It returns when the target serves again, or with
// the error that prevented it.
func inject(ctx context.Context, s *procstack.Stack, f Fault, hold time.Duration) error {
	if f.Action == Crash {
		return s.Cluster.Restart(ctx, true)
	}
	p := proc(s, f.Target)
	if p == nil {
		return fmt.Errorf("no component %q", f.Target)
	}
	switch f.Action {
	case Kill:
		if err := p.Kill(); err != nil {
			return err
		}
		return restart(ctx, p)
	case Freeze:
		if err := p.Freeze(); err != nil {
			return err
		}
		t := time.NewTimer(hold)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return p.Thaw()
	}
	return fmt.Errorf("unknown action %q", f.Action)
}

// restart starts p again, a few times if it fails to become ready (a peer
// it needs may itself be coming back).
func restart(ctx context.Context, p *procstack.Proc) error {
	var err error
	for range 3 {
		if err = p.Start(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		_ = p.Kill() // a half-started incarnation
	}
	return err
}

func proc(s *procstack.Stack, name string) *procstack.Proc {
	for _, p := range s.Procs() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// heal brings every component back: thaws any frozen process and starts
// any that is not running.
func heal(ctx context.Context, s *procstack.Stack) error {
	for _, p := range s.Procs() {
		if p.Running() {
			if err := p.Thaw(); err != nil {
				return err
			}
			continue
		}
		if err := restart(ctx, p); err != nil {
			return fmt.Errorf("healing %s: %w", p.Name, err)
		}
	}
	return nil
}
