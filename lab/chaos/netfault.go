package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/lab/procstack"
)

// passMode is the mode of a healed link.
var passMode = faultproxy.Pass

// links are the stack's fault proxies; none unless it runs them.
func links(s *procstack.Stack) []*faultproxy.Proxy {
	var ps []*faultproxy.Proxy
	for _, p := range []*faultproxy.Proxy{s.PostgresLink, s.BrokerLink} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// beginLink switches the link's fault proxy to the fault's mode for drawn.
// Healing sets it back to pass; after lost replies it first resets every
// connection, whose byte streams lost frames and cannot carry on. What the
// proxy counted meanwhile is the proof: chunks delayed or held, links
// reset, reply bytes dropped.
func (j *injector) beginLink(f Fault, drawn time.Duration) (*strike, error) {
	link := j.s.PostgresLink
	if f.Target == BrokerLink {
		link = j.s.BrokerLink
	}
	if link == nil {
		return nil, fmt.Errorf("%s: the stack runs no fault proxies", f)
	}
	mode, counter := faultproxy.Latency(j.cfg.LinkLatency), "chunks_delayed"
	switch f.Action {
	case Blackhole:
		mode, counter = faultproxy.Blackhole, "chunks_held"
	case Reset:
		mode, counter = faultproxy.Reset, "links_reset"
	case LoseReplies:
		mode, counter = faultproxy.DropReplies, "reply_bytes_dropped"
	}
	before := link.Stats()
	if err := link.SetMode(mode); err != nil {
		return nil, err
	}
	st := &strike{hold: drawn, observed: map[string]int64{"links_open": int64(before.Active)}}
	st.heal = func(context.Context) error {
		if f.Action == LoseReplies {
			if err := link.SetMode(faultproxy.Reset); err != nil {
				return err
			}
		}
		if err := link.SetMode(faultproxy.Pass); err != nil {
			return err
		}
		after := link.Stats()
		st.observed[counter] = statOf(after, counter) - statOf(before, counter)
		return nil
	}
	return st, nil
}

// statOf reads one of a proxy's fault counters by its Injection.Observed name.
func statOf(s faultproxy.Stats, counter string) int64 {
	switch counter {
	case "chunks_delayed":
		return s.Delayed
	case "chunks_held":
		return s.Held
	case "links_reset":
		return s.Resets
	case "reply_bytes_dropped":
		return s.Dropped
	}
	return 0
}
