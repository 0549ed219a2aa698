package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/alpes/alpes/internal/pgtest"
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
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "orders", "--dsn", db.DSN()}, "orders: schema version 5 (latest 5)"},
		{[]string{"migrate", "orders", "status", "--dsn", db.DSN()}, "00005_catalogue_seed.sql"},
		{[]string{"migrate", "orders", "down", "--dsn", db.DSN()}, "orders: schema version 4 (latest 5)"},
		{[]string{"migrate", "orders", "status", "--dsn", db.DSN()}, "pending"},
		{[]string{"migrate", "orders", "down", "--to", "0", "--dsn", db.DSN()}, "orders: schema version 0 (latest 5)"},
		{[]string{"migrate", "orders", "up", "--to", "2", "--dsn", db.DSN()}, "orders: schema version 2 (latest 5)"},
		{[]string{"migrate", "orders", "--dsn", db.DSN()}, "orders: schema version 5 (latest 5)"},
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
