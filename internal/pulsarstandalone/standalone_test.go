package pulsarstandalone_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// distribution fetches (once per cache) and returns the distribution the
// tests run. It fails, never skips: without Java or Maven the real-Pulsar
// pass cannot run, and that must be seen.
func distribution(t *testing.T) pulsarstandalone.Distribution {
	t.Helper()
	cache, err := pulsarstandalone.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := pulsarstandalone.EnsureDistribution(ctx, cache, pulsarstandalone.DefaultVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStartServesWithAlpesSettingsAndStopLeavesNothing starts Pulsar on free
// ports, checks that it serves (Start waited for a produce/consume round
// trip) with deduplication on as deploy/pulsarconf says, then stops it: the
// process is gone and its directory removed.
func TestStartServesWithAlpesSettingsAndStopLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "instance")
	s, err := pulsarstandalone.Start(context.Background(), pulsarstandalone.Config{Distribution: distribution(t), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})
	if !strings.HasPrefix(s.ServiceURL, "pulsar://127.0.0.1:") || !strings.HasPrefix(s.AdminURL, "http://127.0.0.1:") {
		t.Fatalf("not on loopback: %s, %s", s.ServiceURL, s.AdminURL)
	}
	runtime := brokerRuntimeConfig(t, s.AdminURL)
	for key, want := range map[string]string{
		"brokerDeduplicationEnabled":                          "true",
		"brokerDeduplicationProducerInactivityTimeoutMinutes": "360",
		"functionsWorkerEnabled":                              "false",
		"bindAddress":                                         "127.0.0.1",
	} {
		if runtime[key] != want {
			t.Errorf("%s = %q, want %q", key, runtime[key], want)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance directory still there after Stop: %v", err)
	}
	if err := syscall.Kill(s.PID, 0); err == nil {
		t.Errorf("pid %d still runs after Stop", s.PID)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.ServiceURL, "pulsar://"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", s.ServiceURL)
	}
}

func brokerRuntimeConfig(t *testing.T, adminURL string) map[string]string {
	t.Helper()
	resp, err := http.Get(adminURL + "/admin/v2/brokers/configuration/runtime")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAPortInUseFailsWithPulsarsReason: a taken port makes Pulsar exit, and
// Start says so with the end of Pulsar's log instead of waiting minutes.
func TestAPortInUseFailsWithPulsarsReason(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(t.TempDir(), "instance")
	_, err = pulsarstandalone.Start(context.Background(), pulsarstandalone.Config{
		Distribution: distribution(t), Dir: dir, ServicePort: port,
	})
	if err == nil {
		t.Fatalf("started on taken port %d", port)
	}
	if !strings.Contains(err.Error(), "exited before it served") || !strings.Contains(err.Error(), "in use") {
		t.Errorf("error does not say that Pulsar exited because the port is in use: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "data")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("failed start left its data behind")
	}
	if _, serr := os.Stat(filepath.Join(dir, "logs", "standalone.out")); serr != nil {
		t.Errorf("failed start removed the log its error points to: %v", serr)
	}
	t.Logf("port %s: %v", strconv.Itoa(port), err)
}

// TestMissingToolsAreOneLine: without Java, or without Maven for a first
// fetch, the launcher says exactly that in one line, and never starts
// anything else instead.
func TestMissingToolsAreOneLine(t *testing.T) {
	empty := t.TempDir()
	ctx := context.Background()
	t.Run("no java", func(t *testing.T) {
		t.Setenv("JAVA_HOME", "")
		t.Setenv("PATH", empty)
		_, err := pulsarstandalone.EnsureDistribution(ctx, t.TempDir(), pulsarstandalone.DefaultVersion, nil)
		assertOneLine(t, err, pulsarstandalone.ErrNoJava)
	})
	t.Run("JAVA_HOME without java", func(t *testing.T) {
		t.Setenv("JAVA_HOME", empty)
		_, err := pulsarstandalone.EnsureDistribution(ctx, t.TempDir(), pulsarstandalone.DefaultVersion, nil)
		assertOneLine(t, err, pulsarstandalone.ErrNoJava)
	})
	t.Run("no maven", func(t *testing.T) {
		java, err := pulsarstandalone.JavaPath()
		if err != nil {
			t.Fatal(err)
		}
		bin := t.TempDir()
		if err := os.Symlink(java, filepath.Join(bin, "java")); err != nil {
			t.Fatal(err)
		}
		t.Setenv("JAVA_HOME", "")
		t.Setenv("PATH", bin)
		_, err = pulsarstandalone.EnsureDistribution(ctx, t.TempDir(), pulsarstandalone.DefaultVersion, nil)
		assertOneLine(t, err, pulsarstandalone.ErrNoMaven)
	})
}

// TestAnArtifactMavenCannotFetchIsOneLine asks Maven for a version that was
// never published.
func TestAnArtifactMavenCannotFetchIsOneLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := pulsarstandalone.EnsureDistribution(ctx, t.TempDir(), "0.0.1-never-published", nil)
	assertOneLine(t, err, pulsarstandalone.ErrFetch)
	if err != nil && !strings.Contains(err.Error(), "0.0.1-never-published") {
		t.Errorf("error does not name the artifact: %v", err)
	}
}

func assertOneLine(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	t.Logf("%v", err)
}
