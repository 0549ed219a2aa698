// Package pgtest gives tests real PostgreSQL databases, cheaply.
//
// One throwaway cluster is started per test binary, on first use (internal/
// pgcluster: private port and socket directory, wal_level=logical, fsync off).
// Each service's migrations are applied once, to a template database; every
// test then gets its own database cloned from that template with
// CREATE DATABASE … TEMPLATE, dropped again in t.Cleanup.
//
// A package that uses pgtest must stop the cluster after its tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When the Postgres server binaries are missing, tests fail, or are skipped
// with a message saying why when -short is given.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgcluster"
)

// Main runs the package's tests, then stops the cluster whether they passed
// or not, and exits with the tests' exit code.
func Main(m *testing.M) {
	code := m.Run()
	if err := shared.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stopping postgres: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// DB is one test's own database in the shared cluster.
type DB struct {
	// Name is the database name.
	Name string
	// Service is the service whose migrations the database carries, or ""
	// for an empty database.
	Service string

	cluster *pgcluster.Cluster
}

// DSN connects to the database as the cluster's superuser.
func (d *DB) DSN() string { return d.cluster.AdminDSN(d.Name) }

// DSNAs connects to the database as role (trust authentication).
func (d *DB) DSNAs(role string) string { return d.cluster.DSN(role, d.Name) }

// ReplicationDSN opens a logical replication connection to the database as role.
func (d *DB) ReplicationDSN(role string) string { return d.DSNAs(role) + "&replication=database" }

// Cluster is the cluster the database lives in.
func (d *DB) Cluster() *pgcluster.Cluster { return d.cluster }

// Pool opens a connection pool to the database as the superuser, closed when
// the test ends.
func (d *DB) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return d.PoolAs(t, pgcluster.Superuser)
}

// PoolAs opens a connection pool to the database as role, closed when the
// test ends.
func (d *DB) PoolAs(t testing.TB, role string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), d.DSNAs(role))
	if err != nil {
		t.Fatalf("pgtest: opening pool on %s as %s: %v", d.Name, role, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// New returns a fresh database holding service's schema, migrated to the
// latest version, dropped when the test ends.
func New(t testing.TB, service string) *DB {
	t.Helper()
	c := cluster(t)
	tmpl, err := shared.template(service)
	if err != nil {
		t.Fatalf("pgtest: preparing %s template: %v", service, err)
	}
	return create(t, c, service, tmpl)
}

// NewEmpty returns a fresh database with no schema, dropped when the test ends.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	return create(t, cluster(t), "", "template1")
}

// cluster returns the shared cluster, starting it on first use. It skips or
// fails the test when the cluster cannot run.
func cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	c, err := shared.cluster()
	if err == nil {
		return c
	}
	if testing.Short() && strings.Contains(err.Error(), pgcluster.ErrNoBinaries.Error()) {
		t.Skipf("pgtest: skipping under -short: %v (install postgresql to run it)", err)
	}
	t.Fatalf("pgtest: %v", err)
	return nil
}

var dbCounter atomic.Int64

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

func create(t testing.TB, c *pgcluster.Cluster, service, template string) *DB {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", dbCounter.Add(1), unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	if len(name) > 63 {
		name = name[:63]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := shared.adminConn(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	sql := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())
	if _, err := admin.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: creating database %s from %s: %v", name, template, err)
	}
	t.Cleanup(func() {
		if err := drop(name); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return &DB{Name: name, Service: service, cluster: c}
}

// drop removes a test database, first ending its sessions and dropping its
// replication slots (which DROP DATABASE refuses to do itself).
func drop(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := shared.adminConn(ctx)
	if err != nil {
		return err
	}
	// pg_terminate_backend with a timeout waits until the walsender has gone,
	// which releases its slot.
	const terminate = `SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`
	if _, err := admin.Exec(ctx, terminate, name); err != nil {
		return fmt.Errorf("ending replication sessions: %w", err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name); err != nil {
		return fmt.Errorf("dropping replication slots: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
		return err
	}
	return nil
}

// shared is the state of the test binary's one cluster.
var shared harness

type harness struct {
	startOnce sync.Once
	c         *pgcluster.Cluster
	startErr  error

	mu        sync.Mutex
	admin     *pgxpool.Pool
	templates map[string]*templateState
}

type templateState struct {
	once sync.Once
	name string
	err  error
}

func (h *harness) cluster() (*pgcluster.Cluster, error) {
	h.startOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		h.c, h.startErr = pgcluster.Start(ctx, pgcluster.Options{})
		if h.startErr != nil {
			h.startErr = fmt.Errorf("starting postgres: %w", h.startErr)
			return
		}
		h.admin, h.startErr = pgxpool.New(ctx, h.c.AdminDSN("postgres"))
	})
	return h.c, h.startErr
}

func (h *harness) adminConn(ctx context.Context) (*pgxpool.Pool, error) {
	if _, err := h.cluster(); err != nil {
		return nil, err
	}
	return h.admin, nil
}

func (h *harness) template(service string) (string, error) {
	h.mu.Lock()
	if h.templates == nil {
		h.templates = make(map[string]*templateState)
	}
	st, ok := h.templates[service]
	if !ok {
		st = &templateState{name: "tmpl_" + service}
		h.templates[service] = st
	}
	h.mu.Unlock()
	st.once.Do(func() { st.err = h.buildTemplate(st.name, service) })
	return st.name, st.err
}

func (h *harness) stop() error {
	if h.c == nil {
		return nil
	}
	if h.admin != nil {
		h.admin.Close()
	}
	return h.c.Stop()
}

// Exec runs sql on pool, failing the test when it errs.
func Exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Count returns the single integer sql yields on pool, failing the test
// when the query errs.
func Count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// WaitFor polls cond, a condition on state outside the test's goroutine
// (most often a query on its database), every 10ms until it holds, and fails
// the test, naming what it waited for, when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling external state, not synchronising goroutines
	}
}
