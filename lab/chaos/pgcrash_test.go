package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/procstack"
)

// TestPostgresCrashOnTheWholeStack is FAULTS row 3 on the whole system as
// processes: under load, Postgres is stopped as a crash would stop it
// (immediate shutdown); while it is down the bff answers a real POST with a
// 503 problem and writes nothing (or, on a pooled connection that died
// under the request, with the 500 that says the outcome is unknown); once
// it is back, the oracle finds every order applied once everywhere and each
// event once on the broker (the relay's slot rewound to its confirmed
// position, the broker deduplicated the re-sends).
func TestPostgresCrashOnTheWholeStack(t *testing.T) {
	skipWithoutPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startStack(t, ctx, procstack.Options{Durable: true})

	var ledger loadgen.Ledger
	stop := make(chan struct{})
	var load sync.WaitGroup
	var sum loadgen.Summary
	var loadErr error
	load.Go(func() {
		sum, loadErr = loadgen.Run(ctx, loadgen.Config{
			BFFURL: s.BFFURL, Rate: 50, Duration: time.Hour, Stop: stop, Seed: 3, OutcomeWait: time.Minute, Ledger: &ledger,
		})
	})
	stopLoad := sync.OnceFunc(func() { close(stop); load.Wait() })
	defer stopLoad()

	waitFor(t, ctx, "100 orders settled before the crash", func() bool { return ledger.Counts().OK >= 100 })

	pid := postmasterPID(t, s)
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil { // immediate shutdown, as pg_ctl -m immediate
		t.Fatal(err)
	}
	waitFor(t, ctx, "postgres gone", func() bool { return syscall.Kill(pid, 0) != nil })

	// While the database is down the bff answers 503 problems. A request
	// that meets one of the pool's connections to the dead server may have
	// sent its batch before the connection failed: the bff cannot tell
	// whether it committed and says so, truthfully, with the 500 "outcome
	// unknown" problem; the pool then drops that connection. Once no pooled
	// connection is left, every request gets the 503.
	var key string
	for attempt := 1; ; attempt++ {
		key = uuid.NewString()
		status, ctype, body := postOrder(t, ctx, s.BFFURL, key)
		if mt, _, _ := mime.ParseMediaType(ctype); mt != "application/problem+json" {
			t.Fatalf("POST while postgres is down: %d %s %s, want a problem", status, ctype, body)
		}
		if status == http.StatusServiceUnavailable {
			var problem struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
			}
			if err := json.Unmarshal(body, &problem); err != nil || problem.Status != http.StatusServiceUnavailable {
				t.Errorf("problem body %s: %v", body, err)
			}
			ledger.Record(loadgen.Op{Key: key, Fate: loadgen.FateFailed, Status: status, Attempts: 1, At: time.Now()})
			break
		}
		if status != http.StatusInternalServerError || !strings.Contains(string(body), "Idempotency-Key") {
			t.Fatalf("POST while postgres is down: %d %s, want a 503 problem, or the 500 that says the outcome is unknown", status, body)
		}
		// The oracle holds an unknown operation to at most one order.
		ledger.Record(loadgen.Op{Key: key, Fate: loadgen.FateUnknown, Status: status, Attempts: 1, At: time.Now()})
		if attempt == 20 {
			t.Fatalf("%d POSTs while postgres is down, none answered 503: the pool keeps handing out dead connections", attempt)
		}
	}

	// Restart finds the postmaster gone and starts it: crash recovery.
	if err := s.Cluster.Restart(ctx, true); err != nil {
		t.Fatal(err)
	}
	okBefore := ledger.Counts().OK
	waitFor(t, ctx, "100 more orders settled after the crash", func() bool { return ledger.Counts().OK >= okBefore+100 })
	stopLoad()
	if loadErr != nil {
		t.Fatalf("load: %v (%+v)", loadErr, sum)
	}

	// Nothing of the refused request was written.
	conn, err := pgx.Connect(ctx, s.Cluster.AdminDSN("bff"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE key = $1`, key).Scan(&n); err != nil || n != 0 {
		t.Errorf("the refused request's key has %d records (%v)", n, err)
	}

	v, err := oracle.Check(ctx, s.OracleConfig(ledger.Ops(), 2*time.Minute, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client %+v\n%s", sum, v)
	if !v.OK() {
		t.Errorf("the oracle found violations after a Postgres crash")
	}

	// The slots rewound to their last checkpointed position, so the relay
	// sent again what the broker had: its deduplication dropped the copies,
	// which is why the oracle found each event once.
	dups := relayCounter(t, ctx, s.RelayURL, "alpes_relay_duplicates_dropped_total")
	t.Logf("the relay's re-sends dropped as duplicates by the broker: %d", dups)
	if dups == 0 {
		t.Errorf("no re-sent message after the crash: the slots did not rewind")
	}
}

// relayCounter sums a counter of the relay's /metrics over its sources.
func relayCounter(t *testing.T, ctx context.Context, base, name string) int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := send(t, req)
	var total int64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		total += int64(v)
	}
	return total
}

// postmasterPID reads the postmaster's process id from its data directory.
func postmasterPID(t *testing.T, s *procstack.Stack) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Cluster.DataDir(), "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// postOrder sends one order with key and returns the answer.
func postOrder(t *testing.T, ctx context.Context, base, key string) (int, string, []byte) {
	t.Helper()
	body := `{"customer_id":"customer-00001","address":"Alpenweg 1, Zermatt","items":[{"sku":"AXE-ICE-50","quantity":1}]}`
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, answer := send(t, req)
	return resp.StatusCode, resp.Header.Get("Content-Type"), answer
}

// send sends req with the default client and returns the answer and its
// whole body, failing the test when either cannot be had.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// waitFor polls cond until it holds, failing the test when ctx ends first.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, errors.Join(ctx.Err()))
		case <-tick.C:
		}
	}
}
