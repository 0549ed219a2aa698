package check

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*-commandlines.json from the deployment files")

// root is the alpes repository, whose files are checked.
const root = "../.."

// commandLine is one alpes process a deployment file starts: its arguments
// after the binary's name, and the ALPES_… variables that set its flags
// (every flag has one), as the process would see them. cmd/alpes's
// TestDeploymentCommandLinesParse parses each with the alpes command's parser.
type commandLine struct {
	Where string            `json:"where"`
	Args  []string          `json:"args"`
	Env   map[string]string `json:"env,omitempty"`
}

// checkCommandLines compares lines with testdata/<name>-commandlines.json,
// or rewrites the file with -update.
func checkCommandLines(t *testing.T, name string, lines []commandLine) {
	t.Helper()
	path := filepath.Join("testdata", name+"-commandlines.json")
	got, err := json.MarshalIndent(lines, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./... -update in deploy/check)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is stale: the deployment files start other alpes command lines; run go test ./... -update in deploy/check, then go test ./cmd/alpes in the repository's root", path)
	}
}

// alpesEnv are the ALPES_… variables of env, which set alpes's flags.
func alpesEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(k, "ALPES_") {
			out[k] = v
		}
	}
	return out
}

// envFlag is the flag an ALPES_… variable sets (kong.DefaultEnvars):
// ALPES_PULSAR_URL is pulsar-url.
func envFlag(name string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "ALPES_")), "_", "-")
}
