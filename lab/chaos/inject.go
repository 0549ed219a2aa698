package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/alpes/alpes/lab/procstack"
)

// strike is a fault in force: begun, not yet healed.
type strike struct {
	// hold is how long the fault stays in force before it is healed.
	hold time.Duration
	// heal ends the fault and brings its target back; phase orders the
	// heals of a pair: the network and Postgres (0) before processes (1),
	// and a relay failover, which waits for the standby, last (2).
	heal  func(context.Context) error
	phase int
	// afterHeal, when set, runs once every fault of the injection has healed:
	// it waits for the system to show what the fault did (walsenders back
	// under new process ids) and records it.
	afterHeal func(context.Context) error
	observed  map[string]int64
}

// injector applies faults to a stack.
type injector struct {
	s    *procstack.Stack
	cfg  Config
	dups *Duplicates
	rng  *rand.Rand
	// start is when the load began; injections are timed from it.
	start time.Time
}

// deal injects the deck's next fault, or pair of faults with cfg.Pairs,
// holds it, heals it, and returns what happened, one Injection per fault.
func (j *injector) deal(ctx context.Context, d *deck) []Injection {
	drawn := j.cfg.FreezeMin + time.Duration(j.rng.Int64N(int64(j.cfg.FreezeMax-j.cfg.FreezeMin)+1))
	faults := j.draw(d)
	at := time.Now()
	ins := make([]Injection, len(faults))
	strikes := make([]*strike, len(faults))
	var hold time.Duration
	for i, f := range faults {
		ins[i] = Injection{Fault: f, At: at, Offset: at.Sub(j.start)}
		if len(faults) == 2 {
			ins[i].With = faults[1-i].String()
		}
		st, err := j.begin(ctx, f, drawn)
		if err != nil {
			ins[i].Err = err.Error()
			continue
		}
		strikes[i] = st
		hold = max(hold, st.hold)
	}
	wait(ctx, hold)
	healAll(ctx, strikes, ins)
	for i, st := range strikes {
		if st == nil {
			continue
		}
		ins[i].Held = time.Since(at)
		ins[i].Observed = st.observed
	}
	return ins
}

// draw takes the next fault from d, or the next pair with cfg.Pairs.
func (j *injector) draw(d *deck) []Fault {
	if !j.cfg.Pairs {
		return []Fault{d.next()}
	}
	first, second, ok := d.pair()
	if !ok {
		return []Fault{first}
	}
	return []Fault{first, second}
}

// healAll heals the strikes in the order of their phases, then runs their
// afterHeal checks, and records each one's error in the injection at its
// index. Nil strikes (faults that could not begin) are skipped.
func healAll(ctx context.Context, strikes []*strike, ins []Injection) {
	order := slices.Clone(strikes)
	slices.SortStableFunc(order, func(a, b *strike) int { return phaseOf(a) - phaseOf(b) })
	for _, st := range order {
		if st == nil {
			continue
		}
		if err := st.heal(ctx); err != nil {
			ins[slices.Index(strikes, st)].Err = err.Error()
		}
	}
	for i, st := range strikes {
		if st != nil && st.afterHeal != nil && ins[i].Err == "" {
			if err := st.afterHeal(ctx); err != nil {
				ins[i].Err = err.Error()
			}
		}
	}
}

func phaseOf(st *strike) int {
	if st == nil {
		return -1
	}
	return st.phase
}

// wait waits for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// begin puts f in force. drawn is the hold of a fault held for a few
// seconds (a freeze, a link fault); kills and crashes are healed at once
// unless paired with a fault that holds.
func (j *injector) begin(ctx context.Context, f Fault, drawn time.Duration) (*strike, error) {
	switch {
	case f.isLink():
		return j.beginLink(f, drawn)
	case f.Action == Crash || f.Action == FastRestart:
		return j.beginRestart(ctx, f)
	case f.Action == Terminate:
		return j.beginTerminate(ctx, f)
	case f.Action == Churn:
		return j.beginChurn(ctx, f)
	case f.Action == Failover:
		return j.beginFailover(ctx, f)
	}
	p := j.s.Proc(f.Target)
	if f.Action == LongFreeze && p == j.s.Relay && j.s.Standby != nil && streams(ctx, j.s.Standby) {
		p = j.s.Standby // the relay whose walsenders the freeze is meant to outlast
	}
	if p == nil {
		return nil, fmt.Errorf("no component %q", f.Target)
	}
	switch f.Action {
	case Kill:
		j.dups.bank(ctx, j.s, f.Target, fmt.Sprintf("before %s at +%s", f, time.Since(j.start).Round(time.Second)))
		if err := p.Kill(); err != nil {
			return nil, err
		}
		return &strike{phase: 1, heal: func(ctx context.Context) error { return restart(ctx, p) }}, nil
	case Freeze, LongFreeze:
		return j.beginFreeze(ctx, f, p, drawn)
	}
	return nil, fmt.Errorf("unknown fault %q", f)
}

// beginFreeze stops p: for drawn, or for Config.LongFreeze. A streaming
// relay frozen that long loses its walsenders to wal_sender_timeout;
// afterHeal waits for new ones and counts the old ones gone.
func (j *injector) beginFreeze(ctx context.Context, f Fault, p *procstack.Proc, drawn time.Duration) (*strike, error) {
	st := &strike{phase: 1, hold: drawn, heal: func(context.Context) error { return p.Thaw() }}
	if f.Action == LongFreeze {
		st.hold = j.cfg.LongFreeze
		if (p == j.s.Relay || p == j.s.Standby) && streams(ctx, p) {
			before, err := walsenders(ctx, j.s)
			if err != nil {
				return nil, err
			}
			st.afterHeal = j.walsendersReplaced(st, before)
		}
	}
	return st, p.Freeze()
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

// heal brings every component back: the links to pass, Postgres up, any
// frozen process thawed and any that is not running started.
func heal(ctx context.Context, s *procstack.Stack) error {
	var errs []error
	for _, link := range links(s) {
		errs = append(errs, link.SetMode(passMode))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("healing the links: %w", err)
	}
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
