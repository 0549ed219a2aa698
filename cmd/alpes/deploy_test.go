package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// deployCommandLine is one alpes process a deployment file starts, as
// deploy/check writes it: the arguments, and the ALPES_… variables that set
// flags.
type deployCommandLine struct {
	Where string            `json:"where"`
	Args  []string          `json:"args"`
	Env   map[string]string `json:"env"`
}

// TestDeploymentCommandLinesParse parses every alpes command line that
// docker-compose.yml and the Kubernetes manifests of deploy/k8s start (the
// lists deploy/check writes, after checking them against the files and
// lab/stack) with the alpes command's own parser and its environment
// variables, as the process would: an unknown command or flag, a value of
// the wrong type, a required flag missing, or an ALPES_… variable that sets
// no flag of the command fails here.
func TestDeploymentCommandLinesParse(t *testing.T) {
	files, err := filepath.Glob("../../deploy/check/testdata/*-commandlines.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %v, want the command lines of docker-compose.yml and of deploy/k8s", files)
	}
	n := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var lines []deployCommandLine
		if err := json.Unmarshal(raw, &lines); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, l := range lines {
			t.Run(l.Where, func(t *testing.T) { parseDeployed(t, l) })
			n++
		}
	}
	if n < 10 {
		t.Errorf("%d command lines, want the relay, every service and their jobs in both deployments", n)
	}
}

func parseDeployed(t *testing.T, l deployCommandLine) {
	for _, kv := range os.Environ() { // only the line's own variables
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "ALPES_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	for k, v := range l.Env {
		t.Setenv(k, v)
	}
	parser, err := kong.New(&cli{}, defaults, kong.DefaultEnvars("ALPES"),
		kong.Exit(func(int) { t.Errorf("alpes %s: the command line exits the parser", strings.Join(l.Args, " ")) }))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(l.Args)
	if err != nil {
		t.Fatalf("alpes %s: %v", strings.Join(l.Args, " "), err)
	}
	var envs []string
	for _, f := range kctx.Flags() {
		envs = append(envs, f.Envs...)
	}
	for k := range l.Env {
		if !slices.Contains(envs, k) {
			t.Errorf("%s sets no flag of alpes %s", k, kctx.Command())
		}
	}
}
