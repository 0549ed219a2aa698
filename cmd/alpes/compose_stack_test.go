package main

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/alpes/alpes/lab/stack"
)

// composeSite is where docker-compose.yml places the stack: each component
// a service named after it, listening on every interface on its default
// port; Postgres and the real Pulsar the services postgres and pulsar.
var composeSite = stack.Site{
	PulsarURL: "pulsar://pulsar:" + port(stack.Broker.Addr),
	DSN: func(role, database string) string {
		return "postgres://" + role + "@postgres:5432/" + database + "?sslmode=disable"
	},
	URL: func(name string) string {
		c, _ := stack.Lookup(name)
		return "http://" + name + ":" + port(c.Addr)
	},
}

// port is the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// checkComposeRunsTheStack: docker-compose.yml runs every component of
// lab/stack but the broker (the real Pulsar stands in for it, on its
// ports) with the description's command line at composeSite, publishes
// only a component's own default port, migrates every database, checks the
// relay's health at its default URL and points the client at the bff.
func checkComposeRunsTheStack(t *testing.T, f composeFile) {
	t.Helper()
	for _, c := range stack.Components() {
		if c.Name == stack.Broker.Name {
			continue
		}
		svc, ok := f.Services[c.Name]
		if !ok {
			t.Errorf("no %s service", c.Name)
			continue
		}
		want := []string{c.Name}
		for _, flag := range c.At("0.0.0.0:"+port(c.Addr), "").Flags(composeSite) {
			want = append(want, "--"+flag.Name+"="+flag.Value)
		}
		if got := commandArgs(t, c.Name, svc.Command); !slices.Equal(got, want) {
			t.Errorf("%s runs\n  %s\nwant, as lab/stack describes it,\n  %s", c.Name, strings.Join(got, " "), strings.Join(want, " "))
		}
		for _, p := range svc.Ports {
			if own := published(c.Addr); p != own {
				t.Errorf("%s publishes %s, want only its own port, %s", c.Name, p, own)
			}
		}
	}
	wantPulsar := []string{published(stack.Broker.Addr), published(stack.Broker.AdminAddr)}
	if got := f.Services["pulsar"].Ports; !slices.Equal(got, wantPulsar) {
		t.Errorf("pulsar publishes %v, want the broker's ports %v", got, wantPulsar)
	}
	migrate := strings.Join(commandArgs(t, "migrate", f.Services["migrate"].Command), " ")
	if loop := "for s in " + strings.Join(stack.Databases(), " ") + ";"; !strings.Contains(migrate, loop) {
		t.Errorf("migrate does not run %q: %s", loop, migrate)
	}
	health, _ := f.Services[stack.Relay.Name].Healthcheck["test"].([]any)
	if !slices.Contains(health, any(stack.DefaultURL(stack.Relay.Name))) {
		t.Errorf("the relay's healthcheck %v does not ask its default URL %s", health, stack.DefaultURL(stack.Relay.Name))
	}
	client := commandArgs(t, "client", f.Services["client"].Command)
	if want := "--bff-url=" + composeSite.URL(stack.BFF.Name); !slices.Contains(client, want) {
		t.Errorf("the client runs %v, want %s", client, want)
	}
}

// published is how docker-compose.yml publishes addr's port: on loopback,
// under the same number.
func published(addr string) string {
	return "127.0.0.1:" + port(addr) + ":" + port(addr)
}
