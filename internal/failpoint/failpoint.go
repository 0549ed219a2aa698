// Package failpoint lets fault tests crash a process at a named point of its
// work, the way a kill -9 would land there, without timing luck. Points are
// compiled in and cost one nil check when none is armed: production
// processes arm none.
//
// A spec arms points, comma-separated: "relay/after-send=crash@100" kills the
// process with SIGKILL at the 100th time the relay reaches "after-send"
// ("@N" defaults to 1). `alpes` reads the spec from ALPES_FAILPOINTS.
package failpoint

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Set is a set of armed failpoints. A nil *Set arms nothing. Safe for
// concurrent use.
type Set struct {
	points map[string]*point
}

type point struct {
	at   int64 // the hit that fires
	hits atomic.Int64
}

// Parse reads a spec; an empty spec returns nil.
func Parse(spec string) (*Set, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	s := &Set{points: map[string]*point{}}
	for _, item := range strings.Split(spec, ",") {
		name, action, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("failpoint %q: want NAME=crash[@N]", item)
		}
		kind, count, hasCount := strings.Cut(action, "@")
		if kind != "crash" {
			return nil, fmt.Errorf("failpoint %q: unknown action %q (only crash)", item, kind)
		}
		at := int64(1)
		if hasCount {
			n, err := strconv.ParseInt(count, 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("failpoint %q: @N must be a positive integer", item)
			}
			at = n
		}
		s.points[name] = &point{at: at}
	}
	return s, nil
}

// Hit marks that the process reached the named point; if the point is armed
// and this is its firing hit, the process dies at once with SIGKILL.
func (s *Set) Hit(name string) {
	if s == nil {
		return
	}
	p, ok := s.points[name]
	if !ok {
		return
	}
	if p.hits.Add(1) == p.at {
		syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
