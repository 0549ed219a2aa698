package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSecretsNeverReachTheOutput runs every long-running command with a
// password in its connection strings and tokens in its flags, at debug
// level, against a database that refuses connections, and checks that no
// secret appears in what the command prints or returns: the failure paths
// (connection errors, retries, usage) are where secrets usually leak.
func TestSecretsNeverReachTheOutput(t *testing.T) {
	const password, token = "pw-Zermatt-4478", "tok-Matterhorn-9123"
	closed := closedPort(t)
	dsn := func(user, db string) string {
		return "postgres://" + user + ":" + password + "@" + closed + "/" + db + "?sslmode=disable&connect_timeout=1"
	}
	pulsarURL := "pulsar://" + closedPort(t)
	commands := [][]string{
		{"relay", "--source", "orders=" + dsn("alpes_relay", "orders"), "--pulsar-url", pulsarURL,
			"--pulsar-token", token, "--http-addr", "127.0.0.1:0", "--http-token", token},
		{"relay", "--source", "no-equals-sign:" + dsn("alpes_relay", "orders")},
		{"relay", "replay", "--source", "orders=" + dsn("alpes_relay", "orders"), "--since", "1h",
			"--pulsar-url", pulsarURL, "--pulsar-token", token},
		{"orders", "--dsn", dsn("alpes_orders", "orders"), "--pulsar-url", pulsarURL, "--pulsar-token", token, "--http-addr", "127.0.0.1:0"},
		{"payments", "--dsn", dsn("alpes_payments", "payments"), "--pulsar-url", pulsarURL, "--pulsar-token", token, "--http-addr", "127.0.0.1:0"},
		{"reporting", "--dsn", dsn("alpes_reporting", "reporting"), "--pulsar-url", pulsarURL, "--pulsar-token", token, "--http-addr", "127.0.0.1:0"},
		{"bff", "--dsn", dsn("alpes_bff", "bff"), "--pulsar-url", pulsarURL, "--pulsar-token", token,
			"--relay-token", token, "--http-addr", "127.0.0.1:0"},
		{"migrate", "orders", "--dsn", dsn("postgres", "orders")},
		{"broker", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--auth-token", token},
		{"lag", "--url", "http://" + closed, "--token", token},
		{"tail", "persistent://alpes/orders/events.v1", "--pulsar-url", pulsarURL, "--pulsar-token", token},
	}
	for _, args := range commands {
		t.Run(strings.Join(args[:1], " "), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, append([]string{"--log-level", "debug"}, args...), &out, &out)
			if err != nil {
				out.WriteString("\nreturned: " + err.Error())
			}
			for _, secret := range []string{password, token} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("alpes %s printed a secret:\n%s", args[0], out.String())
				}
			}
			if out.Len() == 0 {
				t.Errorf("alpes %s printed nothing at debug level: the check above proved nothing", args[0])
			}
		})
	}
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
