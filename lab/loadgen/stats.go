package loadgen

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stats gathers a run's counters and latencies. Safe for concurrent use.
type stats struct {
	sent, accepted, refused, failed atomic.Int64
	retried                         atomic.Int64
	confirmed, rejected, unresolved atomic.Int64
	mu                              sync.Mutex
	acceptLatency, outcomeLatency   []time.Duration
}

func newStats() *stats { return &stats{} }

func (s *stats) record(into *[]time.Duration, d time.Duration) {
	s.mu.Lock()
	*into = append(*into, d)
	s.mu.Unlock()
}

func (s *stats) percentile(of *[]time.Duration, q float64) time.Duration {
	s.mu.Lock()
	sorted := slices.Clone(*of)
	s.mu.Unlock()
	slices.Sort(sorted)
	return percentile(sorted, q)
}

// percentile of sorted durations, nearest rank; 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Latency summarises a distribution, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

func latency(ds []time.Duration) Latency {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{
		P50: ms(percentile(sorted, 0.50)), P90: ms(percentile(sorted, 0.90)), P99: ms(percentile(sorted, 0.99)),
		P999: ms(percentile(sorted, 0.999)), Max: ms(percentile(sorted, 1)),
	}
}

// Summary is the outcome of a run.
type Summary struct {
	DurationSeconds float64 `json:"duration_s"`
	Sent            int64   `json:"sent"`
	// Accepted orders got 202 (the ledger's ok); Refused got a definite
	// refusal (validation, 429, the bff's 503 problem: the ledger's failed);
	// Failed got no definite answer even after retries (the ledger's
	// unknown). Retried orders needed more than one attempt.
	Accepted int64 `json:"accepted"`
	Refused  int64 `json:"refused"`
	Failed   int64 `json:"failed"`
	Retried  int64 `json:"retried"`
	// Confirmed and Rejected are accepted orders' outcomes; Unresolved
	// accepted orders had none within the wait.
	Confirmed  int64   `json:"confirmed"`
	Rejected   int64   `json:"rejected"`
	Unresolved int64   `json:"unresolved"`
	RatePerSec float64 `json:"rate_per_s"`
	// AcceptLatency runs from an order's due time to its 202; OutcomeLatency
	// to the moment its final state was seen.
	AcceptLatency  Latency `json:"accept_latency"`
	OutcomeLatency Latency `json:"outcome_latency"`
}

func (s *stats) summary(elapsed time.Duration) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Summary{
		DurationSeconds: elapsed.Seconds(),
		Sent:            s.sent.Load(),
		Accepted:        s.accepted.Load(),
		Refused:         s.refused.Load(),
		Failed:          s.failed.Load(),
		Retried:         s.retried.Load(),
		Confirmed:       s.confirmed.Load(),
		Rejected:        s.rejected.Load(),
		Unresolved:      s.unresolved.Load(),
		RatePerSec:      float64(s.sent.Load()) / elapsed.Seconds(),
		AcceptLatency:   latency(s.acceptLatency),
		OutcomeLatency:  latency(s.outcomeLatency),
	}
}
