package bff

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// notifyChannel is the Postgres channel the view consumer notifies on for
// every view it changes. The payload is the order id, a space and the view
// as viewJSON renders it, committed with the change; or the order id alone
// when the view would not fit a notification (maxNotifiedView).
const notifyChannel = "bff_order_views"

// maxNotifiedView bounds the view sent with a notification: Postgres refuses
// payloads of 8000 bytes or more, and a larger view is read again instead.
const maxNotifiedView = "7900"

// notifySQL notifies the change of order $1's view, with the view: the
// statement the consumer runs after the change, in its transaction.
const notifySQL = `SELECT pg_notify('` + notifyChannel + `',
	CASE WHEN octet_length(j) <= ` + maxNotifiedView + ` THEN $1::text || ' ' || j ELSE $1::text END)
	FROM (SELECT ` + viewJSON + ` AS j) changed`

// notifier wakes long polls when their order's view changes. One listener
// connection per process receives the notifications and fans them out to
// the waiters of that order. Safe for concurrent use.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[chan string]struct{}
}

func newNotifier() *notifier {
	return &notifier{waiters: map[string]map[chan string]struct{}{}}
}

// subscribe returns a channel that receives, after each change of order
// id's view, the view as viewJSON renders it, or "" when the waiter must
// read it again; and a function to call when done waiting. Only the newest
// change waits in the channel.
func (n *notifier) subscribe(id string) (<-chan string, func()) {
	ch := make(chan string, 1)
	n.mu.Lock()
	if n.waiters[id] == nil {
		n.waiters[id] = map[chan string]struct{}{}
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

// wake wakes the waiters of order id with view ("": read it again);
// every waiter, to read again, when id is "".
func (n *notifier) wake(id, view string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id != "" {
		signal(n.waiters[id], view)
		return
	}
	for _, chans := range n.waiters {
		signal(chans, "")
	}
}

// signal hands view to each waiter, replacing a change it has not taken
// yet: the newest one is all it needs. Only the listener sends, so the
// second attempt always finds room.
func signal(chans map[chan string]struct{}, view string) {
	for ch := range chans {
		select {
		case ch <- view:
			continue
		default:
		}
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- view:
		default:
		}
	}
}

// parseNotification splits a notification's payload into the order id and
// the view sent with it ("" when there is none).
func parseNotification(payload string) (id, view string) {
	id, view, _ = strings.Cut(payload, " ")
	return id, view
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
		n.wake("", "")
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
	n.wake("", "") // anything changed before LISTEN took effect is re-read
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		n.wake(parseNotification(note.Payload))
	}
}
