package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func alpes(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"--log-level", "warn"}, args...), &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestMigrateUpStatusDown(t *testing.T) {
	db := pgtest.NewEmpty(t)
	fsys, err := migrations.FS("orders")
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(files) < 3 {
		t.Fatalf("orders migrations: %v, %v", files, err)
	}
	latest := len(files)
	version := func(v int) string { return fmt.Sprintf("orders: schema version %d (latest %d)", v, latest) }
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "orders", "--dsn", db.DSN()}, version(latest)},
		{[]string{"migrate", "orders", "status", "--dsn", db.DSN()}, files[latest-1]},
		{[]string{"migrate", "orders", "down", "--dsn", db.DSN()}, version(latest - 1)},
		{[]string{"migrate", "orders", "status", "--dsn", db.DSN()}, "pending"},
		{[]string{"migrate", "orders", "down", "--to", "0", "--dsn", db.DSN()}, version(0)},
		{[]string{"migrate", "orders", "up", "--to", "2", "--dsn", db.DSN()}, version(2)},
		{[]string{"migrate", "orders", "--dsn", db.DSN()}, version(latest)},
	}
	for _, s := range steps {
		out, err := alpes(t, s.args...)
		if err != nil {
			t.Fatalf("alpes %s: %v\n%s", strings.Join(s.args[:3], " "), err, out)
		}
		if !strings.Contains(out, s.want) {
			t.Errorf("alpes %s: output lacks %q:\n%s", strings.Join(s.args[:3], " "), s.want, out)
		}
	}
}

func TestMigrateRefusesBadInput(t *testing.T) {
	db := pgtest.NewEmpty(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"migrate", "inventory", "--dsn", db.DSN()}, `unknown service "inventory"`},
		{"unparsable DSN", []string{"migrate", "orders", "--dsn", "postgres://x@127.0.0.1:99999/orders"}, "reading --dsn"},
		{"unreachable server", []string{"migrate", "orders", "--dsn", "postgres://x@127.0.0.1:1/orders?connect_timeout=5"}, "connecting to orders database"},
		{"unknown action", []string{"migrate", "orders", "sideways", "--dsn", db.DSN()}, "must be one of"},
		{"missing DSN", []string{"migrate", "orders"}, "--dsn"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := alpes(t, c.args...)
			if err == nil {
				t.Fatalf("want an error, got success:\n%s", out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := alpes(t, "version")
	if err != nil || !strings.HasPrefix(out, "alpes ") {
		t.Fatalf("version: %q, %v", out, err)
	}
}
