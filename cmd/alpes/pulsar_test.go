package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/alpes/alpes/internal/devstack"
	"github.com/alpes/alpes/internal/eventcatalog"
	"github.com/alpes/alpes/internal/pulsarstandalone"
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
	dir := instanceDir(port)
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
		getJSON(t, adminURL+"/admin/v2/namespaces/"+ns+"/deduplication", &on)
		if !on {
			t.Errorf("%s: deduplication off after pulsar up", ns)
		}
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

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
