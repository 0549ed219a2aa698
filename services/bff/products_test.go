package bff

import (
	"net/http"
	"testing"
	"time"
)

// TestProductsFromProductUpdated builds the replica from the catalogue's
// events: only a newer updated_at replaces what the replica holds.
func TestProductsFromProductUpdated(t *testing.T) {
	e := newEnvWithBroker(t)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	e.publish(e.topics().CatalogEvents, "SKU-1", productUpdated("SKU-1", "Cheese", 250, t0))
	e.publish(e.topics().CatalogEvents, "SKU-2", productUpdated("SKU-2", "Bread", 120, t0))
	e.publish(e.topics().CatalogEvents, "SKU-1", productUpdated("SKU-1", "Old cheese", 199, t0.Add(-time.Hour))) // stale replay
	e.publish(e.topics().CatalogEvents, "SKU-2", productUpdated("SKU-2", "Rye bread", 130, t0.Add(time.Minute)))
	waitFor(t, "four events applied", func() bool { return e.count(`SELECT count(*) FROM inbox`) == 4 })

	resp := e.do(http.MethodGet, "/v1/products", nil)
	var got struct{ Products []product }
	resp.json(t, &got)
	want := []product{
		{SKU: "SKU-1", Name: "Cheese", Price: money{250, "EUR"}, UpdatedAt: t0},
		{SKU: "SKU-2", Name: "Rye bread", Price: money{130, "EUR"}, UpdatedAt: t0.Add(time.Minute)},
	}
	if len(got.Products) != len(want) {
		t.Fatalf("products %s", resp.body)
	}
	for i, p := range got.Products {
		if p.SKU != want[i].SKU || p.Name != want[i].Name || p.Price != want[i].Price || !p.UpdatedAt.Equal(want[i].UpdatedAt) {
			t.Errorf("product %d: %+v, want %+v", i, p, want[i])
		}
	}
}

func TestProductsEmpty(t *testing.T) {
	e := newEnv(t)
	resp := e.do(http.MethodGet, "/v1/products", nil)
	if resp.StatusCode != http.StatusOK || string(resp.body) != "{\"products\":[]}\n" {
		t.Errorf("%d %q", resp.StatusCode, resp.body)
	}
}
