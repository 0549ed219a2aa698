// Package buildinfo reports which alpes build is running.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time (-ldflags "-X github.com/alpes/alpes/internal/buildinfo.Version=v1.2.3");
// otherwise it comes from the module version the binary was built from.
var Version = ""

// String describes the build in one line: version, VCS revision when known,
// Go version and platform.
func String() string {
	version, revision, dirty := Version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if version == "" || (version == "(devel)" && revision == "") {
		// go run, or GOFLAGS=-buildvcs=false: the build recorded no commit.
		version = "(devel, built without version control information: go build -buildvcs=true)"
	}
	s := "alpes " + version
	if revision != "" {
		s += " " + revision[:min(12, len(revision))]
		if dirty {
			s += "+dirty"
		}
	}
	return fmt.Sprintf("%s %s %s/%s", s, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
