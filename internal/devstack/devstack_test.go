package devstack_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/devstack"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/migrations"
)

// syncBuffer is a bytes.Buffer safe to write from Run and read from the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunServesMigratedDatabasesAndCleansUp runs the stack as `alpes dev`
// does, checks every service database is there and migrated, then stops it.
func TestRunServesMigratedDatabasesAndCleansUp(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, devstack.Config{Out: out}) }()

	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("Run returned before it was ready: %v", err)
		case <-deadline:
			t.Fatalf("stack not ready after 2 minutes; output so far:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}

	for _, service := range migrations.Services {
		dsn := findDSN(t, out.String(), "postgres://"+migrations.ServiceRole(service)+"@")
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("%s: connecting with the printed DSN %s: %v", service, dsn, err)
		}
		var n int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&n)
		conn.Close(ctx)
		if err != nil {
			t.Errorf("%s: reading the inbox as the service login: %v", service, err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancellation")
	}
}

func findDSN(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, field := range strings.Fields(out) {
		if strings.HasPrefix(field, prefix) {
			return field
		}
	}
	t.Fatalf("no DSN starting with %s in output:\n%s", prefix, out)
	return ""
}
