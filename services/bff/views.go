package bff

import (
	"context"
	"encoding/json"
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

// viewJSON is the SQL of order $1's view as the JSON of a viewRow, NULL
// when there is none: the one definition of a view's read, used by GET and
// by the view consumer, which sends it with its notification so that a long
// poll answers without reading again.
const viewJSON = `(SELECT json_build_object(
	'order_id', v.order_id, 'status', v.status, 'customer_id', v.customer_id, 'address', r.address,
	'lines', v.lines, 'total_minor', v.total_minor, 'currency', v.currency, 'payment_id', v.payment_id,
	'rejection_reason', v.rejection_reason, 'rejection_detail', v.rejection_detail,
	'requested_at', v.requested_at, 'updated_at', v.updated_at)::text
	FROM order_views v LEFT JOIN order_requests r ON r.order_id = v.order_id
	WHERE v.order_id = $1::uuid)`

// viewRow is a view's columns as viewJSON renders them.
type viewRow struct {
	OrderID         string     `json:"order_id"`
	Status          string     `json:"status"`
	CustomerID      string     `json:"customer_id"`
	Address         *string    `json:"address"`
	Lines           []viewLine `json:"lines"`
	TotalMinor      *int64     `json:"total_minor"`
	Currency        *string    `json:"currency"`
	PaymentID       *string    `json:"payment_id"`
	RejectionReason *string    `json:"rejection_reason"`
	RejectionDetail *string    `json:"rejection_detail"`
	RequestedAt     time.Time  `json:"requested_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// decodeView turns viewJSON's text into the body of GET /v1/orders/{id}.
func decodeView(text string) (orderView, error) {
	var row viewRow
	if err := json.Unmarshal([]byte(text), &row); err != nil {
		return orderView{}, fmt.Errorf("decoding an order view: %w", err)
	}
	v := orderView{
		OrderID: row.OrderID, Status: row.Status, CustomerID: row.CustomerID, Items: row.Lines,
		Address: deref(row.Address), PaymentID: deref(row.PaymentID),
		RequestedAt: row.RequestedAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(),
	}
	if row.TotalMinor != nil {
		v.Total = &money{AmountMinor: *row.TotalMinor, Currency: deref(row.Currency)}
	}
	if row.RejectionReason != nil {
		v.Rejection = &rejection{Reason: *row.RejectionReason, Detail: deref(row.RejectionDetail)}
	}
	if v.Items == nil {
		v.Items = []viewLine{}
	}
	return v, nil
}

// orderView reads one order's view, or errNotFound.
func (st *store) orderView(ctx context.Context, id string) (orderView, error) {
	var text *string
	err := st.db.QueryRow(ctx, `SELECT `+viewJSON, id).Scan(&text)
	if err != nil {
		return orderView{}, fmt.Errorf("reading order view %s: %w", id, err)
	}
	if text == nil {
		return orderView{}, errNotFound
	}
	return decodeView(*text)
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
