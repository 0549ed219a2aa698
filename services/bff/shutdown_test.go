package bff

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
)

// TestAdminShutdownAroundTheCommit covers FAULTS row 3 for one session: the
// bff's Postgres session is ended (pg_terminate_backend, FATAL 57P01
// admin_shutdown) at three points of an order. A 503 problem promises that
// nothing was written, so the bff may answer one only when it knows the
// order's batch did not run; once the batch was sent, the FATAL is the same
// whether it came before the commit or after it, and the answer is the 500
// problem that says the outcome is unknown. Either way, the retry with the
// same key leaves exactly one order.
func TestAdminShutdownAroundTheCommit(t *testing.T) {
	t.Run("after the commit", func(t *testing.T) {
		e, p := newEnvBehindFatalProxy(t)
		p.arm(afterTheCommit)
		resp := e.post("after-commit", validBody)
		id := storedOrder(t, e, "after-commit", p)
		if id == "" {
			t.Fatalf("the batch did not commit: the scenario did not happen (answer %d %s)", resp.StatusCode, resp.body)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			t.Fatalf("order %s is stored, yet the bff answered 503, which promises nothing was written: %s", id, resp.body)
		}
		checkUnknownOutcome(t, resp)
		retry := e.post("after-commit", validBody)
		var acc accepted
		retry.json(t, &acc)
		if retry.StatusCode != http.StatusAccepted || retry.Header.Get("Idempotent-Replayed") != "true" || acc.OrderID != id {
			t.Errorf("retry: %d %s (replayed %q), want the stored order %s replayed", retry.StatusCode, retry.body,
				retry.Header.Get("Idempotent-Replayed"), id)
		}
		checkOneOrder(t, e)
	})
	t.Run("in the batch, before the commit", func(t *testing.T) {
		e, p := newEnvBehindFatalProxy(t)
		if resp := e.post("warm-up", validBody); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("warm-up: %d %s", resp.StatusCode, resp.body) // prepares the statements on the one connection
		}
		p.arm(beforeTheOrder) // now the Bind of the batch: sent by the bff, never seen by Postgres
		resp := e.post("in-batch", validBody)
		if id := storedOrder(t, e, "in-batch", p); id != "" {
			t.Fatalf("order %s stored: the scenario did not happen (answer %d %s)", id, resp.StatusCode, resp.body)
		}
		checkUnknownOutcome(t, resp) // truthful: the bff cannot tell this from "after the commit"
		if retry := e.post("in-batch", validBody); retry.StatusCode != http.StatusAccepted || retry.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("retry: %d %s, want a new order placed", retry.StatusCode, retry.body)
		}
		if n := e.count(`SELECT count(*) FROM order_requests`); n != 2 {
			t.Errorf("%d orders, want the warm-up and the retried one", n)
		}
	})
	t.Run("while preparing, before the batch", func(t *testing.T) {
		e, p := newEnvBehindFatalProxy(t)
		p.arm(beforeTheOrder) // the Parse of the first INSERT: no INSERT was ever sent
		resp := e.post("preparing", validBody)
		if id := storedOrder(t, e, "preparing", p); id != "" {
			t.Fatalf("order %s stored: the scenario did not happen", id)
		}
		checkProblem(t, resp, http.StatusServiceUnavailable, "")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if retry := e.post("preparing", validBody); retry.StatusCode != http.StatusAccepted || retry.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("retry: %d %s, want a new order placed", retry.StatusCode, retry.body)
		}
		checkOneOrder(t, e)
	})
}

// newEnvBehindFatalProxy is newEnv with the bff's pool (one connection)
// reaching Postgres through a fatalProxy.
func newEnvBehindFatalProxy(t *testing.T) (*env, *fatalProxy) {
	t.Helper()
	db := pgtest.New(t, "bff")
	admin := db.Pool(t)
	p := startFatalProxy(t, fmt.Sprintf("127.0.0.1:%d", db.Cluster().Port()), admin)
	cfg, err := pgxpool.ParseConfig(db.DSNAs("alpes_bff"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", p.port()
	cfg.MaxConns = 1 // the order after a warm-up reuses its prepared statements
	app, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	e := &env{t: t, db: db, admin: admin, app: app}
	e.start(Config{DB: app, Logger: testlog.New(t)})
	// The long-poll listener takes a connection of the pool for itself:
	// wait until it has, or it may take the very connection a warm-up
	// prepared the statements on, and the next order would prepare them
	// again instead of reaching the point the proxy is armed for.
	waitFor(t, "the bff's listener to LISTEN", func() bool {
		return e.count(`SELECT count(*) FROM pg_stat_activity WHERE usename = 'alpes_bff' AND query LIKE 'LISTEN %'`) == 1
	})
	return e, p
}

// storedOrder returns the id of the order stored under key, or "", after
// checking that the proxy ended the session.
func storedOrder(t *testing.T, e *env, key string, p *fatalProxy) string {
	t.Helper()
	if !p.fired.Load() {
		t.Fatal("the proxy never ended the session: the scenario did not happen")
	}
	var id string
	err := e.admin.QueryRow(context.Background(), `SELECT order_id::text FROM idempotency_keys WHERE key = $1`, key).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return id
}

// checkUnknownOutcome checks for the 500 problem that tells the client to
// retry with the same key.
func checkUnknownOutcome(t *testing.T, resp response) {
	t.Helper()
	checkProblem(t, resp, http.StatusInternalServerError, "")
	if !strings.Contains(string(resp.body), "Idempotency-Key") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a 500 that does not say the outcome is unknown: %s (Retry-After %q)", resp.body, resp.Header.Get("Retry-After"))
	}
}

// checkOneOrder checks that exactly one order, with its outbox row, exists.
func checkOneOrder(t *testing.T, e *env) {
	t.Helper()
	if n, m := e.count(`SELECT count(*) FROM order_requests`), e.count(`SELECT count(*) FROM outbox`); n != 1 || m != 1 {
		t.Errorf("%d orders and %d outbox rows, want 1 and 1", n, m)
	}
}
