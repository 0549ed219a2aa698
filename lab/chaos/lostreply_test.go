package chaos_test

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/migrations"
)

// TestBFFRefusesOnlyWhatItDidNotWrite checks the promise a 503 problem
// makes to clients (and the ledger relies on): nothing was written. A second
// bff reaches Postgres through a fault proxy that drops Postgres's replies,
// so the order's statements arrive and commit while the bff hears nothing;
// it must not then answer with the 503 that means "nothing written", but
// with the 500 problem that says the outcome is unknown; and a retry with
// the same key, once the replies flow again, replays the stored order.
func TestBFFRefusesOnlyWhatItDidNotWrite(t *testing.T) {
	skipWithoutPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startStack(t, ctx, procstack.Options{})
	proxy := faultproxy.New(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Cluster.Port())))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	bff := exec.CommandContext(ctx, binary, "bff", "--http-addr", addr, "--pulsar-url", s.BrokerURL, "--pulsar-tenant", s.Topics.Tenant,
		"--dsn", "postgres://"+migrations.ServiceRole("bff")+"@"+proxy.Addr()+"/bff?sslmode=disable")
	if err := bff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bff.Process.Kill(); bff.Wait() })
	base := "http://" + addr
	waitFor(t, ctx, "the second bff", func() bool {
		resp, err := http.Get(base + "/v1/products")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if status, _, body := postOrder(t, ctx, base, uuid.NewString()); status != http.StatusAccepted {
		t.Fatalf("an order through the proxy: %d %s", status, body)
	}

	if err := proxy.SetMode(faultproxy.DropReplies); err != nil {
		t.Fatal(err)
	}
	key := uuid.NewString()
	status, _, body := postOrder(t, ctx, base, key)
	if err := proxy.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.Cluster.AdminDSN("bff"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE key = $1`, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d idempotency records for the key whose replies were dropped, want 1: the scenario did not happen (answer %d %s)", n, status, body)
	}
	if status != http.StatusInternalServerError || !strings.Contains(string(body), "Idempotency-Key") {
		t.Errorf("the order was stored and its reply lost; the bff answered %d %s, want the 500 problem that says the outcome is unknown", status, body)
	}
	if status, _, body := postOrder(t, ctx, base, key); status != http.StatusAccepted {
		t.Errorf("the retry with the same key: %d %s, want the stored 202 replayed", status, body)
	}
}
