package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/alpes/alpes/lab/procstack"
)

// beginChurn kills the first instance of the service; healing starts it
// again and kills and restarts each other instance right after the one
// before it is back, while the subscription hands it its keys.
func (j *injector) beginChurn(ctx context.Context, f Fault) (*strike, error) {
	var instances []*procstack.Proc
	for _, p := range j.s.Procs() {
		if p.Name == f.Target || strings.HasPrefix(p.Name, f.Target+"-") {
			instances = append(instances, p)
		}
	}
	if len(instances) < 2 {
		return nil, fmt.Errorf("churning %s needs two instances or more, the stack runs %d", f.Target, len(instances))
	}
	st := &strike{phase: 1, observed: map[string]int64{}}
	when := fmt.Sprintf("before %s at +%s", f, time.Since(j.start).Round(time.Second))
	j.dups.bank(ctx, j.s, instances[0].Name, when)
	if err := instances[0].Kill(); err != nil {
		return nil, err
	}
	st.observed["instances_killed"] = 1
	st.heal = func(ctx context.Context) error {
		if err := restart(ctx, instances[0]); err != nil {
			return err
		}
		for _, p := range instances[1:] {
			j.dups.bank(ctx, j.s, p.Name, when)
			if err := p.Kill(); err != nil {
				return err
			}
			st.observed["instances_killed"]++
			if err := restart(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
	return st, nil
}

// beginFailover kills the relay that streams the sources and watches, from
// that moment, for the other relay to stream every source. Healing waits
// for that, records how long the takeover took (takeover_ms), and starts
// the killed relay again, now the standby.
func (j *injector) beginFailover(ctx context.Context, f Fault) (*strike, error) {
	if j.s.Standby == nil {
		return nil, fmt.Errorf("%s: the stack runs no standby relay", f)
	}
	active, standby := j.s.Relay, j.s.Standby
	if streams(ctx, standby) {
		active, standby = standby, active
	} else if !streams(ctx, active) {
		return nil, fmt.Errorf("%s: neither relay streams every source", f)
	}
	j.dups.bank(ctx, j.s, active.Name, fmt.Sprintf("before %s at +%s", f, time.Since(j.start).Round(time.Second)))
	killed := time.Now()
	if err := active.Kill(); err != nil {
		return nil, err
	}
	// The takeover is timed when it happens, not when healing looks.
	watch, stop := context.WithTimeout(ctx, time.Minute)
	took := make(chan error, 1)
	var after time.Duration
	go func() {
		err := waitStreaming(watch, standby)
		after = time.Since(killed)
		took <- err
	}()
	st := &strike{phase: 2, observed: map[string]int64{}}
	st.heal = func(ctx context.Context) error {
		defer stop()
		if err := <-took; err != nil {
			return fmt.Errorf("%s did not take over from %s: %w", standby.Name, active.Name, err)
		}
		st.observed["takeover_ms"] = after.Milliseconds()
		return restart(ctx, active)
	}
	return st, nil
}

// waitStreaming waits until relay p streams every source, or ctx ends.
func waitStreaming(ctx context.Context, p *procstack.Proc) error {
	for !streams(ctx, p) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// streams reports whether relay p answers and streams every source.
func streams(ctx context.Context, p *procstack.Proc) bool {
	if !p.Running() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := getBody(ctx, p.URL+"/v1/lag")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var lag struct {
		Sources []struct {
			State string `json:"state"`
		} `json:"sources"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&lag); err != nil || len(lag.Sources) == 0 {
		return false
	}
	for _, src := range lag.Sources {
		if !strings.EqualFold(src.State, "streaming") {
			return false
		}
	}
	return true
}
