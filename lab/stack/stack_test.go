package stack_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/alpes/alpes/lab/stack"
	"github.com/alpes/alpes/migrations"
)

// TestDescriptionCoversEveryDatabase checks the description against the
// migrations: every service with a schema is a component owning it, the
// relay streams every producer's outbox, and no two default listeners share
// a port, so that a stack on the defaults can start.
func TestDescriptionCoversEveryDatabase(t *testing.T) {
	if got := stack.Databases(); !slices.Equal(got, migrations.Services) {
		t.Errorf("the components own %v, want every service's database %v", got, migrations.Services)
	}
	if !slices.Equal(stack.Relay.Sources, migrations.Producers) {
		t.Errorf("the relay streams %v, want every producer %v", stack.Relay.Sources, migrations.Producers)
	}
	names, ports := map[string]bool{}, map[string]string{}
	for _, c := range stack.Components() {
		if names[c.Name] {
			t.Errorf("two components called %s", c.Name)
		}
		names[c.Name] = true
		for _, addr := range []string{c.Addr, c.AdminAddr} {
			if addr == "" {
				continue
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("%s: address %q: %v", c.Name, addr, err)
			}
			if other, taken := ports[port]; taken {
				t.Errorf("%s and %s both listen on port %s by default", other, c.Name, port)
			}
			ports[port] = c.Name
		}
		if got, ok := stack.Lookup(c.Name); !ok || got.Name != c.Name {
			t.Errorf("Lookup(%q) = %v, %v", c.Name, got.Name, ok)
		}
	}
	for _, c := range stack.Components() {
		for _, l := range c.Links {
			if !names[l.Peer] {
				t.Errorf("%s links --%s to %s, which is no component", c.Name, l.Flag, l.Peer)
			}
		}
	}
}

// TestFlagsNameTheSite checks the command lines the description gives at a
// site: databases as the component's own login, the relay's sources as its
// login, the broker and the peers as the site reaches them.
func TestFlagsNameTheSite(t *testing.T) {
	site := stack.Site{
		PulsarURL: "pulsar://b:1",
		DSN:       func(role, db string) string { return "pg://" + role + "/" + db },
		URL:       func(name string) string { return "http://" + name },
	}
	for _, c := range []struct {
		component stack.Component
		want      string
	}{
		{stack.Broker.At("h:1", "h:2"), "--addr h:1 --admin-addr h:2"},
		{stack.Relay.At("h:3", ""), "--source bff=pg://alpes_relay/bff --source orders=pg://alpes_relay/orders " +
			"--source payments=pg://alpes_relay/payments --pulsar-url pulsar://b:1 --http-addr h:3"},
		{stack.Orders.At("h:4", ""), "--dsn pg://alpes_orders/orders --pulsar-url pulsar://b:1 --http-addr h:4"},
		{stack.BFF, "--dsn pg://alpes_bff/bff --pulsar-url pulsar://b:1 --http-addr " + stack.BFF.Addr +
			" --reporting-url http://reporting --relay-lag-url http://relay/v1/lag --progress-url http://orders/v1/progress" +
			" --progress-url http://payments/v1/progress --progress-url http://reporting/v1/progress"},
	} {
		if got := strings.Join(stack.Args(c.component.Flags(site)), " "); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.component.Name, got, c.want)
		}
	}
	if got := stack.BFF.LinkURLs(stack.FlagProgressURL, stack.DefaultURL); len(got) != 3 || got[0] != "http://"+stack.Orders.Addr+"/v1/progress" {
		t.Errorf("the bff's default progress URLs: %v", got)
	}
}
