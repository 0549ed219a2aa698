package pgcluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pgcluster"
)

func startCluster(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestStartGivesALogicalReplicationCluster(t *testing.T) {
	c := startCluster(t, pgcluster.Options{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	settings := map[string]string{"wal_level": "logical", "fsync": "off", "listen_addresses": "127.0.0.1"}
	for name, want := range settings {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(c.SocketDir(), filepath.Dir(c.DataDir())) {
		t.Errorf("socket dir %s is not private to the cluster directory %s", c.SocketDir(), filepath.Dir(c.DataDir()))
	}
}

func TestDurableKeepsFsyncOn(t *testing.T) {
	c := startCluster(t, pgcluster.Options{Durable: true, Settings: map[string]string{"work_mem": "8MB"}})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var fsync, workMem string
	if err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('work_mem')").Scan(&fsync, &workMem); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" || workMem != "8MB" {
		t.Errorf("fsync=%s work_mem=%s, want on and 8MB", fsync, workMem)
	}
}

func TestStopShutsDownAndRemovesTheDirectory(t *testing.T) {
	c := startCluster(t, pgcluster.Options{})
	dir := filepath.Dir(c.DataDir())
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still there after Stop (stat: %v)", dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.AdminDSN("postgres")); err == nil {
		conn.Close(ctx)
		t.Error("the cluster still accepts connections after Stop")
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestMissingBinariesAreNamed(t *testing.T) {
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "initdb") {
		t.Fatalf("err = %v, want an error naming initdb", err)
	}
}

func TestRestartKeepsTheData(t *testing.T) {
	for _, immediate := range []bool{false, true} {
		// Without synchronous commit a crash loses the newest commits:
		// crash tests need a durable cluster.
		c := startCluster(t, pgcluster.Options{Durable: immediate})
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)`); err != nil {
			t.Fatal(err)
		}
		if err := c.Restart(ctx, immediate); err != nil {
			t.Fatalf("restart (immediate=%t): %v", immediate, err)
		}
		if err := conn.Ping(ctx); err == nil {
			t.Errorf("immediate=%t: a connection survived the restart", immediate)
		}
		conn.Close(ctx)
		conn, err = pgx.Connect(ctx, c.AdminDSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, `SELECT n FROM kept`).Scan(&n); err != nil || n != 42 {
			t.Errorf("immediate=%t: after restart n=%d, %v", immediate, n, err)
		}
		conn.Close(ctx)
	}
}

func TestAPortTakenByAnotherClusterIsAnError(t *testing.T) {
	first := startCluster(t, pgcluster.Options{})
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{Port: first.Port()})
	if err == nil {
		t.Fatal("a second cluster on the same port reported ready")
	}
	if !strings.Contains(err.Error(), "could not") && !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("err = %v, want it to say the port is taken", err)
	}
}
