// Package proctest builds the alpes binary once per test binary, for the
// tests that run the system as processes (lab/procstack and what
// stands on it). The binary is built without the race detector whatever the
// test's flags: the children are the system under test, not the test.
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Main builds the alpes command into a temporary directory, stores its path
// in *binary, runs the tests and removes the directory. Call it from
// TestMain.
func Main(m *testing.M, binary *string) {
	dir, err := os.MkdirTemp("", "alpes-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = filepath.Join(dir, "alpes")
	build := exec.Command("go", "build", "-o", *binary, "github.com/alpes/alpes/cmd/alpes")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building alpes:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
