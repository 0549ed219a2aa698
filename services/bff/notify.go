package bff

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyChannel is the Postgres channel the view consumer notifies with the
// order id of every view it changes.
const notifyChannel = "bff_order_views"

// notifier wakes long polls when their order's view changes. One listener
// connection per process receives the notifications and fans them out to
// the waiters of that order. Safe for concurrent use.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func newNotifier() *notifier {
	return &notifier{waiters: map[string]map[chan struct{}]struct{}{}}
}

// subscribe returns a channel that receives a wake-up after each change of
// order id's view, and a function to call when done waiting.
func (n *notifier) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.waiters[id] == nil {
		n.waiters[id] = map[chan struct{}]struct{}{}
	}
	n.waiters[id][ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.waiters[id], ch)
		if len(n.waiters[id]) == 0 {
			delete(n.waiters, id)
		}
		n.mu.Unlock()
	}
}

// wake wakes the waiters of order id; every waiter when id is "".
func (n *notifier) wake(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id != "" {
		signal(n.waiters[id])
		return
	}
	for _, chans := range n.waiters {
		signal(chans)
	}
}

func signal(chans map[chan struct{}]struct{}) {
	for ch := range chans {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// listen holds one connection LISTENing on notifyChannel and wakes waiters
// until ctx ends. After a lost connection it reconnects with backoff and
// wakes every waiter, since notifications may have been missed meanwhile.
func (n *notifier) listen(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listenOnce(ctx, db)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("listening for order view changes", "err", err, "retry_in", backoff)
		n.wake("")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (n *notifier) listenOnce(ctx context.Context, db *pgxpool.Pool) error {
	pooled, err := db.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
	}
	// A connection that LISTENed must not return to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	n.wake("") // anything changed before LISTEN took effect is re-read
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		n.wake(note.Payload)
	}
}
