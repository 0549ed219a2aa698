package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox"
	catalogv1 "github.com/alpes/alpes/proto/alpes/catalog/v1"
)

// productState is one product's current state, to be published.
type productState struct {
	product
	updatedAt time.Time
}

// publishCatalogue appends a ProductUpdated for every product whose current
// state was not published yet and stamps the rows, in one transaction, and
// returns how many it published. The rows are locked: an instance starting
// at the same time waits, then finds them published and publishes nothing.
func (s *Service) publishCatalogue(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT sku, name, price_minor, currency, updated_at FROM products
			WHERE published_updated_at IS DISTINCT FROM updated_at
			ORDER BY sku
			FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("reading unpublished products: %w", err)
		}
		states, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (productState, error) {
			var p productState
			return p, r.Scan(&p.sku, &p.name, &p.priceMinor, &p.currency, &p.updatedAt)
		})
		if err != nil {
			return fmt.Errorf("reading unpublished products: %w", err)
		}
		published := make([]string, 0, len(states))
		for _, p := range states {
			_, err := s.outbox.Append(ctx, tx, outbox.Message{
				Topic:       s.topics.CatalogEvents,
				AggregateID: p.sku,
				Body: &catalogv1.ProductUpdated{
					Sku:       p.sku,
					Name:      p.name,
					Price:     money(p.priceMinor, p.currency),
					UpdatedAt: timestamppb.New(p.updatedAt),
				},
			})
			if err != nil {
				return fmt.Errorf("appending ProductUpdated for %s: %w", p.sku, err)
			}
			published = append(published, p.sku)
		}
		if len(published) == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE products SET published_updated_at = updated_at WHERE sku = ANY($1)`, published)
		if err != nil {
			return fmt.Errorf("stamping published products: %w", err)
		}
		n = int(tag.RowsAffected())
		return nil
	})
	return n, err
}
