package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"

	"github.com/alpes/alpes/deploy/pulsarconf"
	"github.com/alpes/alpes/internal/pulsarstandalone"
)

// composeFile is the part of docker-compose.yml these checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     any               `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]any    `yaml:"depends_on"`
		Ports       []string          `yaml:"ports"`
		Healthcheck map[string]any    `yaml:"healthcheck"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

// TestComposeFileIsConsistent checks docker-compose.yml statically, since no
// Docker engine runs here: it parses (duplicate keys are errors), every
// dependency exists, ports stay on loopback, the real Pulsar image runs with
// deduplication and Postgres with logical replication, every command given
// to the alpes image is a valid alpes command line, and the file runs the
// stack lab/stack describes (checkComposeRunsTheStack).
func TestComposeFileIsConsistent(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, want := range []string{"postgres", "pulsar"} {
		if _, ok := f.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	alpesCommands := 0
	for name, svc := range f.Services {
		if svc.Image == "" && svc.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		for dep := range svc.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond loopback", name, p)
			}
		}
		if svc.Image == "alpes:dev" {
			args := commandArgs(t, name, svc.Command)
			parser, err := kong.New(&cli{}, defaults, kong.Exit(func(int) { t.Errorf("%s: the command line exits the parser", name) }))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parser.Parse(args); err != nil {
				t.Errorf("%s: alpes %s: %v", name, strings.Join(args, " "), err)
			}
			alpesCommands++
		}
	}
	if alpesCommands < 5 {
		t.Errorf("%d services run the alpes image, want the relay and every service", alpesCommands)
	}
	checkPulsarRunsAlpesSettings(t, f)
	if !slices.Contains(commandArgs(t, "postgres", f.Services["postgres"].Command), "wal_level=logical") {
		t.Error("postgres runs without wal_level=logical")
	}
	checkComposeRunsTheStack(t, f)
	dockerfile, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil || !strings.Contains(string(dockerfile), "./cmd/alpes") {
		t.Errorf("deploy/Dockerfile does not build ./cmd/alpes (%v)", err)
	}
}

func commandArgs(t *testing.T, service string, command any) []string {
	t.Helper()
	list, ok := command.([]any)
	if !ok {
		t.Fatalf("%s: command %v is not a list", service, command)
	}
	args := make([]string, len(list))
	for i, a := range list {
		args[i], _ = a.(string)
	}
	return args
}

// checkPulsarRunsAlpesSettings: the container runs the Pulsar version the
// launcher runs, with deploy/pulsarconf/standalone.conf (the one source of
// alpes's broker settings, deduplication among them) appended to the
// configuration that standalone really reads. PULSAR_PREFIX_* variables
// would do nothing there: standalone applies them only through
// bin/apply-config-from-env.py.
func checkPulsarRunsAlpesSettings(t *testing.T, f composeFile) {
	t.Helper()
	want := "apachepulsar/pulsar:" + pulsarstandalone.DefaultVersion
	for _, name := range []string{"pulsar", "pulsar-init"} {
		if img := f.Services[name].Image; img != want {
			t.Errorf("%s runs %q, want %q (the version `alpes pulsar up` runs)", name, img, want)
		}
	}
	pulsar := f.Services["pulsar"]
	for k := range pulsar.Environment {
		if strings.HasPrefix(k, "PULSAR_PREFIX_") {
			t.Errorf("pulsar sets %s, which standalone ignores", k)
		}
	}
	mounted := ""
	for _, v := range pulsar.Volumes {
		if src, dst, ok := strings.Cut(v, ":"); ok && src == "./deploy/pulsarconf/standalone.conf" {
			mounted, _, _ = strings.Cut(dst, ":")
		}
	}
	if mounted == "" {
		t.Fatal("pulsar does not mount deploy/pulsarconf/standalone.conf")
	}
	script := strings.Join(commandArgs(t, "pulsar", pulsar.Command), " ")
	for _, step := range []string{"cat conf/standalone.conf " + mounted + " > /tmp/standalone.conf",
		"PULSAR_STANDALONE_CONF=/tmp/standalone.conf exec bin/pulsar standalone"} {
		if !strings.Contains(script, step) {
			t.Errorf("pulsar's command lacks %q: %s", step, script)
		}
	}
	if !strings.Contains(pulsarconf.StandaloneOverrides, "\nbrokerDeduplicationEnabled=true\n") {
		t.Error("deploy/pulsarconf/standalone.conf does not turn deduplication on")
	}
}
