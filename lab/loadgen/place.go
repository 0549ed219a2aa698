package loadgen

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// judge classifies one answer to POST /v1/orders. doubtful says whether an
// earlier attempt with the same key had an unknown fate: then a refusal that
// only says "not now" (429, 409, the 503 problem) tells nothing about that
// earlier attempt, and the operation stays unknown. It returns the fate the
// operation would have if it ended here, and whether it should end here.
func judge(a answer, doubtful bool) (fate Fate, final bool) {
	switch {
	case a.err != nil || a.status == 0:
		return FateUnknown, false
	case a.status == http.StatusAccepted:
		return FateOK, true
	case a.status == http.StatusServiceUnavailable && a.problem,
		a.status == http.StatusTooManyRequests,
		a.status == http.StatusConflict:
		// Nothing written by this attempt; the bff asks to come back later.
		if doubtful {
			return FateUnknown, false
		}
		return FateFailed, true
	case a.status/100 == 4:
		// Validation and the like: the same body meets the same refusal,
		// whichever attempt it is, before anything is written.
		return FateFailed, true
	default:
		// A 5xx that does not say the database was unreachable: the work
		// may have been done.
		return FateUnknown, false
	}
}

// placeOrder places one order under a fresh Idempotency-Key. An attempt of
// unknown fate is retried with the same key, with backoff, for up to
// Config.RetryFor from the first attempt: the bff replays the stored answer
// when the first attempt did commit, so most unknowns end ok or failed.
func (r *run) placeOrder(ctx context.Context, o Order) Op {
	op := Op{Key: uuid.NewString(), Order: &o, At: time.Now()}
	giveUp := op.At.Add(r.cfg.RetryFor)
	backoff := 100 * time.Millisecond
	doubtful := false
	for {
		a := r.api.postOrder(ctx, op.Key, o, r.cfg.RequestTimeout)
		op.Attempts++
		op.Status = a.status
		if a.orderID != "" {
			op.OrderID = a.orderID
		}
		fate, final := judge(a, doubtful)
		op.Fate = fate
		if final {
			op.Err = ""
			return op
		}
		doubtful = true
		if a.err != nil {
			op.Err = a.err.Error()
		} else {
			op.Err = http.StatusText(a.status)
		}
		wait := max(backoff, a.retry)
		if r.cfg.RetryFor <= 0 || time.Now().Add(wait).After(giveUp) || ctx.Err() != nil {
			return op
		}
		if a.status != 0 {
			r.cfg.Logger.Debug("retrying an order", "key", op.Key, "status", a.status)
		} else {
			r.cfg.Logger.Debug("retrying an order", "key", op.Key, "err", a.err)
		}
		select {
		case <-ctx.Done():
			return op
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// awaitOutcome follows an accepted order until it is confirmed or rejected
// and returns that state, or "" when Config.OutcomeWait passed with the
// order still pending. Time spent failing to read the state (the bff or
// its database down) is added to the wait, up to three times OutcomeWait in
// all, so that a component's outage is not mistaken for a stuck order.
func (r *run) awaitOutcome(ctx context.Context, id string) string {
	start := time.Now()
	deadline := start.Add(r.cfg.OutcomeWait)
	limit := start.Add(3 * r.cfg.OutcomeWait)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(deadline) {
			return ""
		}
		state, err := r.api.awaitOrder(ctx, id, min(10*time.Second, deadline.Sub(now)))
		if err != nil {
			r.cfg.Logger.Debug("waiting for an order", "order_id", id, "err", err)
			pause := backoff
			backoff = min(2*backoff, 2*time.Second)
			// The failed read and the pause do not count against the wait.
			if deadline = deadline.Add(time.Since(now) + pause); deadline.After(limit) {
				deadline = limit
			}
			select {
			case <-ctx.Done():
				return ""
			case <-time.After(pause):
			}
			continue
		}
		backoff = 100 * time.Millisecond
		if state == "confirmed" || state == "rejected" {
			return state
		}
	}
	return ""
}
