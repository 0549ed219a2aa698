package check

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerignoreKeepsWhatTheBuildReads reads .dockerignore as Docker
// does and checks that the image's build context keeps every file `go
// build ./cmd/alpes` reads (go.mod, go.sum, the Go and embedded files of
// every alpes package the binary imports), and leaves out the repository's
// history, local binaries, test data, documentation and any site's
// secrets.
func TestDockerignoreKeepsWhatTheBuildReads(t *testing.T) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(path string) bool {
		ok, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	needed := append([]string{"go.mod", "go.sum"}, buildFiles(t)...)
	if len(needed) < 50 {
		t.Fatalf("the build reads %d files, want the binary's packages'", len(needed))
	}
	for _, path := range needed {
		if excluded(path) {
			t.Errorf(".dockerignore leaves out %s, which go build ./cmd/alpes reads", path)
		}
	}
	for _, path := range []string{".git/config", "alpes", "bin/alpes", "cmd/alpes/alpes.test", "docs/benchmarks.md",
		"relay/pgsource/testdata/fuzz/FuzzDecodePgoutput/x", "deploy/k8s/overlays/example/postgres.env", "cover.out"} {
		if !excluded(path) {
			t.Errorf(".dockerignore keeps %s", path)
		}
	}
}

// buildFiles are the files, relative to the repository, of the alpes
// packages ./cmd/alpes is built from.
func buildFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,CgoFiles,EmbedFiles", "./cmd/alpes")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Dockerfile builds
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			Dir                           string
			Module                        *struct{ Main bool }
			GoFiles, CgoFiles, EmbedFiles []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue // the standard library, or a module go mod download fetches
		}
		rel, err := filepath.Rel(abs, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.EmbedFiles} {
			for _, f := range list {
				files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	return files
}
