package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"
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
	} `yaml:"services"`
}

// TestComposeFileIsConsistent checks docker-compose.yml statically, since no
// Docker engine runs here: it parses (duplicate keys are errors), every
// dependency exists, ports stay on loopback, the real Pulsar image runs with
// deduplication and Postgres with logical replication, and every command
// given to the alpes image is a valid alpes command line.
func TestComposeFileIsConsistent(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, want := range []string{"postgres", "pulsar", "relay", "bff", "orders", "payments", "reporting"} {
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
			parser, err := kong.New(&cli{}, kong.Exit(func(int) { t.Errorf("%s: the command line exits the parser", name) }))
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
	if img := f.Services["pulsar"].Image; !strings.HasPrefix(img, "apachepulsar/pulsar:") {
		t.Errorf("pulsar runs %q, want the real apachepulsar/pulsar image", img)
	}
	if f.Services["pulsar"].Environment["PULSAR_PREFIX_brokerDeduplicationEnabled"] != "true" {
		t.Error("pulsar runs without broker-side deduplication")
	}
	if !slices.Contains(commandArgs(t, "postgres", f.Services["postgres"].Command), "wal_level=logical") {
		t.Error("postgres runs without wal_level=logical")
	}
	relay := strings.Join(commandArgs(t, "relay", f.Services["relay"].Command), " ")
	for _, source := range []string{"--source=bff=", "--source=orders=", "--source=payments="} {
		if !strings.Contains(relay, source) {
			t.Errorf("the relay lacks %s…", source)
		}
	}
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
