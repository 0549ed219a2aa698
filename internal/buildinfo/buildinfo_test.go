package buildinfo

import (
	"strings"
	"testing"
)

// A test binary records no commit, as `go run` and GOFLAGS=-buildvcs=false
// do not: the version then says how to get one rather than a bare (devel).
func TestVersionWithoutACommitSaysHowToGetOne(t *testing.T) {
	s := String()
	if !strings.HasPrefix(s, "alpes (devel") || !strings.Contains(s, "-buildvcs=true") {
		t.Errorf("String() = %q, want the devel version to say how to build with the commit", s)
	}
}
