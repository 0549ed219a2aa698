package orders_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/broker"
	catalogv1 "github.com/alpes/alpes/proto/alpes/catalog/v1"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/servicetest"
)

// products decodes every ProductUpdated received so far, in order.
func (e *env) products(r *servicetest.Received) []*catalogv1.ProductUpdated {
	e.T.Helper()
	msgs := r.All()
	out := make([]*catalogv1.ProductUpdated, 0, len(msgs))
	for _, m := range msgs {
		var p catalogv1.ProductUpdated
		if err := proto.Unmarshal(m.Payload(), &p); err != nil {
			e.T.Fatal(err)
		}
		if m.Key() != p.GetSku() {
			e.T.Errorf("ProductUpdated for %s keyed %q", p.GetSku(), m.Key())
		}
		out = append(out, &p)
	}
	return out
}

// catalogueRows counts the ProductUpdated rows orders appended to its outbox.
func (e *env) catalogueRows() int {
	e.T.Helper()
	return e.Count(`SELECT count(*) FROM outbox WHERE topic = $1`, e.Topics.CatalogEvents)
}

// subscribed returns how many consumers the orders subscription has on the
// commands topic: a Service subscribes only once its catalogue is published.
func (e *env) subscribed() int {
	e.T.Helper()
	path := strings.TrimPrefix(e.Topics.OrderCommands, "persistent://")
	resp, err := http.Get(e.Broker.AdminURL + "/admin/v2/persistent/" + path + "/stats")
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	var st broker.TopicStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0 // the topic does not exist yet
	}
	return len(st.Subscriptions[orders.Subscription].Consumers)
}

func TestCatalogueIsPublishedOnceAtStartup(t *testing.T) {
	e := newEnv(t)
	seeded := e.Count(`SELECT count(*) FROM products`)
	feed := e.Watch(e.Topics.CatalogEvents)

	first := e.startService()
	e.WaitFor("the seeded catalogue on the topic", func() bool { return len(e.products(feed)) >= seeded })
	var axe *catalogv1.ProductUpdated
	for _, p := range e.products(feed) {
		if p.GetSku() == "AXE-ICE-50" {
			axe = p
		}
	}
	var updatedAt time.Time
	if err := e.Admin.QueryRow(context.Background(), `SELECT updated_at FROM products WHERE sku = 'AXE-ICE-50'`).Scan(&updatedAt); err != nil {
		t.Fatal(err)
	}
	if axe.GetName() != "Ice axe, 50 cm" || axe.GetPrice().GetAmountMinor() != 8990 || axe.GetPrice().GetCurrency() != "EUR" ||
		!axe.GetUpdatedAt().AsTime().Equal(updatedAt) {
		t.Errorf("ProductUpdated = %v, updated_at in the table %s", axe, updatedAt)
	}
	first.Stop(t)
	e.WaitFor("the first instance gone", func() bool { return e.subscribed() == 0 })

	// A restart publishes nothing: the catalogue has not changed.
	second := e.startService()
	e.WaitFor("the restarted instance subscribed", func() bool { return e.subscribed() == 1 })
	second.Stop(t)
	if n := e.catalogueRows(); n != seeded {
		t.Errorf("%d ProductUpdated after a restart, want %d", n, seeded)
	}

	// A price change is published once, by one of two instances starting at once.
	e.Exec(`UPDATE products SET price_minor = 7490 WHERE sku = 'HELMET-MTN'`)
	e.Exec(`UPDATE products SET price_minor = price_minor WHERE sku = 'HARNESS-ALP'`) // no change
	e.startService()
	e.startService()
	e.WaitFor("two instances subscribed", func() bool { return e.subscribed() == 2 })
	if n := e.catalogueRows(); n != seeded+1 {
		t.Errorf("%d ProductUpdated after a price change, want %d", n, seeded+1)
	}
	e.WaitFor("the new price on the topic", func() bool { return len(e.products(feed)) >= seeded+1 })
	got := e.products(feed)
	if last := got[len(got)-1]; last.GetSku() != "HELMET-MTN" || last.GetPrice().GetAmountMinor() != 7490 ||
		!last.GetUpdatedAt().AsTime().After(updatedAt) {
		t.Errorf("last ProductUpdated = %v, want HELMET-MTN at 7490", last)
	}
}
