package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Subscription handlers of the admin API: list, create (at the latest
// position or a message id), delete, clear the backlog (skip_all) and
// reset the cursor to a publish time.

var errSubscriptionNotFound = errors.New("subscription not found")

// withSubscription runs fn with the named subscription of the request's
// topic, under the topic's lock.
func (b *Broker) withSubscription(r *http.Request, fn func(t *topic, s *subscription) error) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	t, err := b.existingTopic(name)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[r.PathValue("sub")]
	if s == nil {
		return fmt.Errorf("%w: %q on %s", errSubscriptionNotFound, r.PathValue("sub"), name)
	}
	return fn(t, s)
}

func (b *Broker) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	if err == nil {
		var t *topic
		if t, err = b.existingTopic(name); err == nil {
			t.mu.Lock()
			names := make([]string, 0, len(t.subs))
			for n := range t.subs {
				names = append(names, n)
			}
			t.mu.Unlock()
			sort.Strings(names)
			writeJSON(w, names)
			return
		}
	}
	writeError(w, err)
}

// createSubscription creates a durable subscription, at the position in
// the body ({"ledgerId": L, "entryId": E}) or at the end of the topic.
func (b *Broker) createSubscription(w http.ResponseWriter, r *http.Request) {
	name, err := pathTopic(r)
	var t *topic
	if err == nil {
		t, err = b.topic(name, true)
	}
	var pos struct {
		LedgerID *int64 `json:"ledgerId"`
		EntryID  *int64 `json:"entryId"`
	}
	if err == nil {
		if derr := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1024)).Decode(&pos); derr != nil && !errors.Is(derr, io.EOF) {
			err = fmt.Errorf("%w: body must be a message id", errBadRequest)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sub := r.PathValue("sub")
	if _, exists := t.subs[sub]; exists {
		writeError(w, fmt.Errorf("%w: subscription %q", errTopicExists, sub))
		return
	}
	start := t.nextID()
	if pos.EntryID != nil && *pos.EntryID >= 0 && *pos.EntryID < start {
		start = max(*pos.EntryID, t.firstID)
	} else if pos.EntryID != nil && *pos.EntryID < 0 {
		start = t.firstID // "earliest"
	}
	t.subs[sub] = newSubscription(t, sub, wirev1.CommandSubscribe_Exclusive, true, start)
	t.cursorsDirty = true
	w.WriteHeader(http.StatusNoContent)
}

// deleteSubscription refuses while consumers are connected, unless force.
func (b *Broker) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	force := r.URL.Query().Get("force") == "true"
	err := b.withSubscription(r, func(t *topic, s *subscription) error {
		if len(s.consumers) > 0 && !force {
			return fmt.Errorf("%w: subscription %q has consumers", errTopicBusy, s.name)
		}
		s.disconnectConsumers()
		delete(t.subs, s.name)
		t.cursorsDirty = true
		return nil
	})
	respond(w, err)
}

// skipAll acknowledges everything the subscription has not, as Pulsar's
// "clear backlog" does.
func (b *Broker) skipAll(w http.ResponseWriter, r *http.Request) {
	respond(w, b.withSubscription(r, func(t *topic, s *subscription) error {
		s.ackCumulative(t.lastID())
		return nil
	}))
}

// resetCursor moves the subscription to the first message published at or
// after the timestamp (milliseconds) in the path; its consumers reconnect.
func (b *Broker) resetCursor(w http.ResponseWriter, r *http.Request) {
	ts, err := strconv.ParseUint(r.PathValue("timestamp"), 10, 64)
	if err != nil {
		// Pulsar's route only matches a number: anything else is 404.
		writeError(w, fmt.Errorf("%w: timestamp %q is not milliseconds since the epoch", errNoResource, r.PathValue("timestamp")))
		return
	}
	respond(w, b.withSubscription(r, func(t *topic, s *subscription) error {
		s.reset(t.firstIDAtOrAfter(ts))
		s.disconnectConsumers()
		return nil
	}))
}

// respond answers 204, or the error.
func respond(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
