package eventcatalog_test

import (
	"errors"
	"testing"

	"github.com/alpes/alpes/services/eventcatalog"
)

func TestDefaultTopicsAreADR0006s(t *testing.T) {
	got := eventcatalog.DefaultTopics()
	want := eventcatalog.Topics{
		Tenant:          "alpes",
		OrderCommands:   "persistent://alpes/orders/commands.v1",
		OrderEvents:     "persistent://alpes/orders/events.v1",
		PaymentEvents:   "persistent://alpes/payments/events.v1",
		CatalogEvents:   "persistent://alpes/catalog/events.v1",
		RelayQuarantine: "persistent://alpes/relay/quarantine.v1",
	}
	if got != want {
		t.Errorf("DefaultTopics() = %+v, want %+v", got, want)
	}
}

func TestTopicsForATenant(t *testing.T) {
	got, err := eventcatalog.TopicsFor("shop-eu.2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Tenant != "shop-eu.2" || got.OrderEvents != "persistent://shop-eu.2/orders/events.v1" ||
		got.RelayQuarantine != "persistent://shop-eu.2/relay/quarantine.v1" {
		t.Errorf("TopicsFor(shop-eu.2) = %+v", got)
	}
}

func TestInvalidTenantsAreRefused(t *testing.T) {
	long := ""
	for range 64 {
		long += "a"
	}
	for _, tenant := range []string{"", "Alpes", "al/pes", "al pes", "-alpes", ".alpes", "al:pes", "al=pes", "persistent://alpes", long} {
		if _, err := eventcatalog.TopicsFor(tenant); !errors.Is(err, eventcatalog.ErrInvalidTenant) {
			t.Errorf("TopicsFor(%q): err = %v, want ErrInvalidTenant", tenant, err)
		}
	}
	if _, err := eventcatalog.TopicsFor(long[:63]); err != nil {
		t.Errorf("a 63-character tenant: %v", err)
	}
}

func TestResolve(t *testing.T) {
	got, err := eventcatalog.Topics{}.Resolve()
	if err != nil || got != eventcatalog.DefaultTopics() {
		t.Errorf("zero Topics resolve to %+v, %v; want the default tenant's", got, err)
	}
	mine, _ := eventcatalog.TopicsFor("mine")
	if got, err := mine.Resolve(); err != nil || got != mine {
		t.Errorf("TopicsFor(mine).Resolve() = %+v, %v", got, err)
	}
	mixed := mine
	mixed.PaymentEvents = eventcatalog.DefaultTopics().PaymentEvents
	if _, err := mixed.Resolve(); !errors.Is(err, eventcatalog.ErrInvalidTenant) {
		t.Errorf("topics of two tenants: err = %v, want ErrInvalidTenant", err)
	}
	if _, err := (eventcatalog.Topics{OrderEvents: "persistent://x/orders/events.v1"}).Resolve(); !errors.Is(err, eventcatalog.ErrInvalidTenant) {
		t.Errorf("topics without a tenant: err = %v, want ErrInvalidTenant", err)
	}
}
