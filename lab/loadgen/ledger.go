package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Fate is what the client knows, at the end, about one order it tried to
// place: the bff's answer decides it, not what the client hoped.
type Fate string

const (
	// FateOK: the bff answered 202 with an order id; the order exists.
	FateOK Fate = "ok"
	// FateFailed: a definite refusal that wrote nothing: a 4xx, or a 503
	// problem+json (the bff could not reach its database), to a request
	// none of whose earlier attempts had an unknown fate.
	FateFailed Fate = "failed"
	// FateUnknown: no definite answer, even after retrying with the same
	// Idempotency-Key for Config.RetryFor: no response, a reset, a timeout,
	// a 5xx other than the bff's 503 problem. The order may or may not exist,
	// but never twice.
	FateUnknown Fate = "unknown"
)

// Op is one operation of the ledger: one order the client tried to place.
type Op struct {
	// Key is the Idempotency-Key every attempt of the operation carried.
	Key string `json:"key"`
	// Order is what every attempt asked to place, for an oracle to compare
	// with what the system stored; nil when whoever recorded the operation
	// did not say.
	Order *Order `json:"order,omitempty"`
	// OrderID is the order's id when an answer named it.
	OrderID string `json:"order_id,omitempty"`
	Fate    Fate   `json:"fate"`
	// Status is the HTTP status of the last answer; 0 when there was none.
	Status int `json:"status,omitempty"`
	// Attempts counts the POSTs sent with Key.
	Attempts int `json:"attempts"`
	// Outcome is the final state the client saw (confirmed or rejected);
	// empty when it saw none.
	Outcome string `json:"outcome,omitempty"`
	// Err is the last error of an operation whose fate is unknown.
	Err string `json:"error,omitempty"`
	// At is when the first attempt was sent.
	At time.Time `json:"at"`
}

// Ledger records every operation of one or more runs (Config.Ledger), for an
// oracle to check against the system afterwards. The zero value is ready to
// use; it is safe for concurrent use.
type Ledger struct {
	mu  sync.Mutex
	ops []Op
}

// Record adds an operation. The client records each of its operations once,
// when its fate and outcome are known; others that write to the same system
// (a test's own requests) record theirs so that the oracle knows them.
func (l *Ledger) Record(op Op) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far.
func (l *Ledger) Ops() []Op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

// FateCounts counts operations by fate.
type FateCounts struct {
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"`
}

// Counts counts the recorded operations by fate.
func (l *Ledger) Counts() FateCounts {
	var c FateCounts
	for _, op := range l.Ops() {
		switch op.Fate {
		case FateOK:
			c.OK++
		case FateFailed:
			c.Failed++
		default:
			c.Unknown++
		}
	}
	return c
}
