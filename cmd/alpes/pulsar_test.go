package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/stack/stacktest"
	"github.com/alpes/alpes/services/eventcatalog"
)

// TestPulsarUpThenDownLeavesNothing is the launcher's acceptance as a user
// runs it: `alpes pulsar up` returns once Pulsar serves, with alpes's
// namespaces deduplicated; `alpes pulsar down` stops it and removes every
// file; a second down says there is nothing to stop.
func TestPulsarUpThenDownLeavesNothing(t *testing.T) {
	port, adminPort := freeTestPort(t), freeTestPort(t)
	ports := []string{"--port", strconv.Itoa(port)}
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"pulsar", "up", "--admin-port", strconv.Itoa(adminPort)}, ports...), &out, &out)
	dir := pulsarstandalone.BackgroundDir(port)
	t.Cleanup(func() {
		if s, err := pulsarstandalone.Attach(dir); err == nil {
			s.Stop()
		}
	})
	if err != nil {
		t.Fatalf("pulsar up: %v\n%s", err, out.String())
	}
	s, err := pulsarstandalone.Attach(dir)
	if err != nil {
		t.Fatal(err)
	}
	adminURL := "http://127.0.0.1:" + strconv.Itoa(adminPort)
	for _, ns := range devstack.Namespaces(eventcatalog.DefaultTenant) {
		var on bool
		stacktest.GetJSON(t, adminURL+"/admin/v2/namespaces/"+ns+"/deduplication", &on)
		if !on {
			t.Errorf("%s: deduplication off after pulsar up", ns)
		}
	}

	// The quick start with --pulsar real finds it and leaves it running.
	devOut := runDevUntilReady(t, []string{"dev", "--pulsar", "real", "--broker-addr", "127.0.0.1:" + strconv.Itoa(port),
		"--postgres-port", "0", "--relay-http-addr", "127.0.0.1:0", "--orders-addr", "127.0.0.1:0", "--payments-addr", "127.0.0.1:0",
		"--reporting-addr", "127.0.0.1:0", "--bff-addr", "127.0.0.1:0"})
	if !strings.Contains(devOut, "(alpes pulsar up)") || !strings.Contains(devOut, s.ServiceURL) {
		t.Errorf("alpes dev --pulsar real did not use the running Pulsar:\n%s", devOut)
	}
	if !s.Running() {
		t.Fatal("alpes dev stopped the Pulsar that alpes pulsar up started")
	}

	out.Reset()
	if err := run(context.Background(), append([]string{"pulsar", "down"}, ports...), &out, &out); err != nil {
		t.Fatalf("pulsar down: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after pulsar down", dir)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/cmdline"); err == nil && strings.Contains(string(b), "Pulsar") {
		t.Errorf("pid %d still runs Pulsar after pulsar down", s.PID)
	}
	out.Reset()
	if err := run(context.Background(), append([]string{"pulsar", "down"}, ports...), &out, &out); err != nil {
		t.Fatalf("second pulsar down: %v", err)
	}
	if !strings.Contains(out.String(), "nothing to stop") {
		t.Errorf("second pulsar down says %q", out.String())
	}
}

func freeTestPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runDevUntilReady runs `alpes dev` with args until it says it is running,
// then stops it as Ctrl-C would, and returns what it printed.
func runDevUntilReady(t *testing.T, args []string) string {
	t.Helper()
	out := &stacktest.SyncBuffer{}
	dev := stacktest.Go(t, func(ctx context.Context) error { return run(ctx, args, out, io.Discard) })
	dev.WaitForOutput(t, out, "alpes dev is running", 3*time.Minute)
	if err := dev.Stop(); err != nil {
		t.Errorf("alpes dev: %v", err)
	}
	return out.String()
}
