package bff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Order statuses of the view: pending (accepted here), placed (priced by
// orders), then confirmed or rejected, which are terminal.
const (
	statusPending   = "pending"
	statusPlaced    = "placed"
	statusConfirmed = "confirmed"
	statusRejected  = "rejected"
)

func terminal(status string) bool { return status == statusConfirmed || status == statusRejected }

// money is an amount in minor units of an ISO 4217 currency.
type money struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

// viewLine is one line of an order view: as requested while pending, priced
// once orders placed the order.
type viewLine struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	Name      string `json:"name,omitempty"`
	UnitPrice *money `json:"unit_price,omitempty"`
	LineTotal *money `json:"line_total,omitempty"`
}

// rejection says why orders rejected an order.
type rejection struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// orderView is the body of GET /v1/orders/{id}.
type orderView struct {
	OrderID     string     `json:"order_id"`
	Status      string     `json:"status"`
	CustomerID  string     `json:"customer_id"`
	Address     string     `json:"address,omitempty"`
	Items       []viewLine `json:"items"`
	Total       *money     `json:"total,omitempty"`
	PaymentID   string     `json:"payment_id,omitempty"`
	Rejection   *rejection `json:"rejection,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// orderView reads one order's view, or errNotFound.
func (st *store) orderView(ctx context.Context, id string) (orderView, error) {
	var (
		v                        orderView
		address, currency, payID *string
		reason, detail           *string
		total                    *int64
	)
	err := st.db.QueryRow(ctx, `
		SELECT v.order_id::text, v.status, v.customer_id, r.address, v.lines, v.total_minor, v.currency,
		       v.payment_id::text, v.rejection_reason, v.rejection_detail, v.requested_at, v.updated_at
		FROM order_views v LEFT JOIN order_requests r ON r.order_id = v.order_id
		WHERE v.order_id = $1`, id).
		Scan(&v.OrderID, &v.Status, &v.CustomerID, &address, &v.Items, &total, &currency,
			&payID, &reason, &detail, &v.RequestedAt, &v.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, errNotFound
	}
	if err != nil {
		return v, fmt.Errorf("reading order view %s: %w", id, err)
	}
	v.Address, v.PaymentID = deref(address), deref(payID)
	if total != nil {
		v.Total = &money{AmountMinor: *total, Currency: deref(currency)}
	}
	if reason != nil {
		v.Rejection = &rejection{Reason: *reason, Detail: deref(detail)}
	}
	if v.Items == nil {
		v.Items = []viewLine{}
	}
	v.RequestedAt, v.UpdatedAt = v.RequestedAt.UTC(), v.UpdatedAt.UTC()
	return v, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// product is one entry of GET /v1/products.
type product struct {
	SKU       string    `json:"sku"`
	Name      string    `json:"name"`
	Price     money     `json:"price"`
	UpdatedAt time.Time `json:"updated_at"`
}

// maxProducts bounds one GET /v1/products answer.
const maxProducts = 1000

// products lists the replica's products by SKU, at most maxProducts.
func (st *store) products(ctx context.Context) ([]product, error) {
	rows, err := st.db.Query(ctx, `SELECT sku, name, price_minor, currency, updated_at FROM products ORDER BY sku LIMIT $1`, maxProducts)
	if err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (product, error) {
		var p product
		err := r.Scan(&p.SKU, &p.Name, &p.Price.AmountMinor, &p.Price.Currency, &p.UpdatedAt)
		p.UpdatedAt = p.UpdatedAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	return ps, nil
}
