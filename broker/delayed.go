package broker

import (
	"cmp"
	"slices"
	"time"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Delayed delivery (a producer's DeliverAfter / DeliverAt), as in Pulsar:
// Shared and Key_Shared subscriptions hold an entry back until its time;
// Exclusive and Failover deliver it at once.

type delayedEntry struct {
	at int64 // Unix milliseconds
	id int64
}

// delayUntilDue reports whether e is not due yet for this subscription,
// in which case it is set aside and a timer will hand it back to
// dispatch. Caller holds topic.mu.
func (s *subscription) delayUntilDue(e *entry) bool {
	if e.deliverAt == 0 || (s.subType != wirev1.CommandSubscribe_Shared && s.subType != wirev1.CommandSubscribe_Key_Shared) {
		return false
	}
	if e.deliverAt <= time.Now().UnixMilli() {
		return false
	}
	d := delayedEntry{at: e.deliverAt, id: e.id}
	i, _ := slices.BinarySearchFunc(s.delayed, d, func(a, b delayedEntry) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id))
	})
	s.delayed = slices.Insert(s.delayed, i, d)
	if i == 0 {
		s.armDelayTimer()
	}
	return true
}

// armDelayTimer schedules the release of the earliest delayed entry.
// Caller holds topic.mu.
func (s *subscription) armDelayTimer() {
	if s.delayTimer != nil {
		s.delayTimer.Stop()
	}
	if len(s.delayed) == 0 {
		return
	}
	wait := time.Until(time.UnixMilli(s.delayed[0].at))
	s.delayTimer = time.AfterFunc(wait, func() {
		s.topic.mu.Lock()
		defer s.topic.mu.Unlock()
		s.releaseDue()
		s.dispatch()
	})
}

// releaseDue moves the entries whose time has come to the replay list.
// Caller holds topic.mu.
func (s *subscription) releaseDue() {
	now := time.Now().UnixMilli()
	n := 0
	for n < len(s.delayed) && s.delayed[n].at <= now {
		if !s.isAcked(s.delayed[n].id) {
			s.insertReplay(s.delayed[n].id)
		}
		n++
	}
	s.delayed = s.delayed[n:]
	s.armDelayTimer()
}
