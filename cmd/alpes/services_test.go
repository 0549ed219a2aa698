package main

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/services/eventcatalog"
)

// TestPulsarTenantFlag checks that every service takes its tenant from
// --pulsar-tenant or ALPES_PULSAR_TENANT, eventcatalog's default when
// neither is given, and refuses a tenant alpes cannot name topics in.
func TestPulsarTenantFlag(t *testing.T) {
	parse := func(t *testing.T, args ...string) *cli {
		t.Helper()
		var c cli
		parser, err := kong.New(&c, kong.DefaultEnvars("ALPES"), defaults, kong.Exit(func(int) { t.Error("the parser exits") }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(args); err != nil {
			t.Fatalf("alpes %v: %v", args, err)
		}
		return &c
	}
	flags := func(c *cli) map[string]serviceFlags {
		return map[string]serviceFlags{"bff": c.BFF.serviceFlags, "orders": c.Orders.serviceFlags,
			"payments": c.Payments.serviceFlags, "reporting": c.Reporting.serviceFlags}
	}
	for _, service := range []string{"bff", "orders", "payments", "reporting"} {
		t.Run(service, func(t *testing.T) {
			t.Setenv("ALPES_PULSAR_TENANT", "") // restored when the test ends
			os.Unsetenv("ALPES_PULSAR_TENANT")
			got, err := flags(parse(t, service, "--dsn", "postgres://x"))[service].topics()
			if err != nil || got != eventcatalog.DefaultTopics() {
				t.Errorf("no tenant given: %+v, %v; want the default tenant's topics", got, err)
			}
			got, err = flags(parse(t, service, "--dsn", "postgres://x", "--pulsar-tenant", "shop-2"))[service].topics()
			if err != nil || got.OrderEvents != "persistent://shop-2/orders/events.v1" {
				t.Errorf("--pulsar-tenant shop-2: %+v, %v", got, err)
			}
			t.Setenv("ALPES_PULSAR_TENANT", "from-env")
			if got, err = flags(parse(t, service, "--dsn", "postgres://x"))[service].topics(); err != nil || got.Tenant != "from-env" {
				t.Errorf("ALPES_PULSAR_TENANT=from-env: %+v, %v", got, err)
			}
			_, err = flags(parse(t, service, "--dsn", "postgres://x", "--pulsar-tenant", "No/Such"))[service].topics()
			if !errors.Is(err, eventcatalog.ErrInvalidTenant) {
				t.Errorf("--pulsar-tenant No/Such: err = %v, want ErrInvalidTenant", err)
			}
		})
	}
}

// TestInboxRetentionFlag checks that every service keeps its inbox for
// inbox.DefaultRetention unless --inbox-retention says otherwise, and passes
// the flag to its consumer's sweep.
func TestInboxRetentionFlag(t *testing.T) {
	for _, service := range []string{"bff", "orders", "payments", "reporting"} {
		t.Run(service, func(t *testing.T) {
			parse := func(args ...string) serviceFlags {
				t.Helper()
				var c cli
				parser, err := kong.New(&c, kong.DefaultEnvars("ALPES"), defaults, kong.Exit(func(int) { t.Error("the parser exits") }))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := parser.Parse(append([]string{service, "--dsn", "postgres://x"}, args...)); err != nil {
					t.Fatalf("alpes %s %v: %v", service, args, err)
				}
				return map[string]serviceFlags{"bff": c.BFF.serviceFlags, "orders": c.Orders.serviceFlags,
					"payments": c.Payments.serviceFlags, "reporting": c.Reporting.serviceFlags}[service]
			}
			if got := parse().sweep(); got.Retention != inbox.DefaultRetention || got.AllowShortRetention {
				t.Errorf("no flag: sweep %+v, want retention %s", got, inbox.DefaultRetention)
			}
			if got := parse("--inbox-retention", "240h").sweep(); got.Retention != 240*time.Hour {
				t.Errorf("--inbox-retention 240h: sweep %+v", got)
			}
		})
	}
}
