// Package stacktest holds what the tests of a whole running stack share,
// in-process (lab/devstack) or behind the alpes command (cmd/alpes): a
// stack run in the background until the test stops it, the output it
// prints, and reading its JSON endpoints.
package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/testrun"
)

// SyncBuffer is a bytes.Buffer safe to write from one goroutine (a stack
// printing where it runs) and read from another (the test).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// GetJSON decodes the JSON answer of GET url into v; an error or a status
// other than 200 fails the test.
func GetJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// Background is a stack's Run in the background of a test
// (internal/testrun), with waits on what it prints and serves.
type Background struct{ *testrun.Background }

// Go runs run in a goroutine. When the test ends, its context is cancelled
// and the test waits until it has returned.
func Go(t testing.TB, run func(ctx context.Context) error) *Background {
	return &Background{testrun.Go(t, run)}
}

// WaitUntil polls cond until it holds, failing the test when run returns
// first or timeout passes; what names the wait in the failure.
func (b *Background) WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	b.poll(t, timeout, cond, func() string { return what })
}

// WaitForOutput waits as WaitUntil does until out holds text, and returns
// all of out; a failure shows what was printed so far.
func (b *Background) WaitForOutput(t testing.TB, out *SyncBuffer, text string, timeout time.Duration) string {
	t.Helper()
	b.poll(t, timeout, func() bool { return strings.Contains(out.String(), text) }, func() string {
		return fmt.Sprintf("%q in the output; so far:\n%s", text, out)
	})
	return out.String()
}

// poll checks cond every 20ms until it holds, run returns or timeout
// passes; waitingFor says, at the failure, what was awaited.
func (b *Background) poll(t testing.TB, timeout time.Duration, cond func() bool, waitingFor func() string) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-b.Done():
			t.Fatalf("returned (%v) while waiting for %s", b.Err(), waitingFor())
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, waitingFor())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
