// Package testrun runs a component's Run in the background of a test: on a
// context of its own, cancelled and awaited when the test ends, its error
// kept for the test to check. Consumers, relays and whole stacks are run
// this way by their tests.
package testrun

import (
	"context"
	"testing"
	"time"
)

// Background is a function, such as a component's Run, running in a
// goroutine on a context of its own until it returns or is cancelled.
type Background struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
}

// cleanupTimeout bounds the wait, when the test ends, for run to return.
const cleanupTimeout = time.Minute

// Go runs run in a goroutine. When the test ends, its context is cancelled
// and the test waits until it has returned (failing after a minute).
func Go(t testing.TB, run func(ctx context.Context) error) *Background {
	return GoUnder(t, context.Background(), run)
}

// GoUnder is Go with a context derived from parent, so that run also ends
// when parent does.
func GoUnder(t testing.TB, parent context.Context, run func(ctx context.Context) error) *Background {
	ctx, cancel := context.WithCancel(parent)
	b := &Background{cancel: cancel, done: make(chan struct{})}
	go func() {
		b.err = run(ctx)
		close(b.done)
	}()
	t.Cleanup(func() { b.StopWithin(t, "what the test ran in the background", cleanupTimeout) })
	return b
}

// Cancel cancels run's context, as Ctrl-C or SIGTERM would, and returns at
// once.
func (b *Background) Cancel() { b.cancel() }

// Done is closed once run has returned.
func (b *Background) Done() <-chan struct{} { return b.done }

// Err is what run returned; nil while it runs.
func (b *Background) Err() error {
	select {
	case <-b.done:
		return b.err
	default:
		return nil
	}
}

// Stop cancels run's context, waits until it has returned and returns its
// error.
func (b *Background) Stop() error {
	b.cancel()
	<-b.done
	return b.err
}

// StopWithin is Stop with a bound: when run has not returned within
// timeout, the test fails, naming what did not stop.
func (b *Background) StopWithin(t testing.TB, what string, timeout time.Duration) error {
	t.Helper()
	b.cancel()
	select {
	case <-b.done:
		return b.err
	case <-time.After(timeout):
		t.Fatalf("%s did not stop within %s", what, timeout)
		return nil
	}
}
