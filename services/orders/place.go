package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox"
	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// noCurrency is ISO 4217's code for "no currency involved": the currency of
// an order rejected before it could be priced.
const noCurrency = "XXX"

// placeOrder applies a PlaceOrder command within tx: the order is placed
// (OrderPlaced) or rejected (OrderRejected), or nothing happens when its
// order id is taken.
func (s *Service) placeOrder(ctx context.Context, tx inbox.Tx, msg inbox.Message, cmd *ordersv1.PlaceOrder) error {
	if !isUUID(cmd.GetOrderId()) {
		return fmt.Errorf("%w: order id %q is not a uuid", inbox.ErrPark, cmd.GetOrderId())
	}
	requestedAt := requestTime(cmd, msg)
	if rej := checkShape(cmd); rej != nil {
		return s.rejectAtPlacement(ctx, tx, cmd, requestedAt, rej)
	}
	catalogue, taken, err := readForPlacing(ctx, tx, cmd.GetOrderId(), skus(cmd.GetLines()))
	if err != nil {
		return err
	}
	if taken {
		s.log.InfoContext(ctx, "order id already taken: PlaceOrder ignored", "order_id", cmd.GetOrderId())
		return nil
	}
	p, rej := price(cmd.GetLines(), catalogue)
	if rej != nil {
		return s.rejectAtPlacement(ctx, tx, cmd, requestedAt, rej)
	}
	return s.place(ctx, tx, cmd, requestedAt, p)
}

// place stores a priced order and its lines and appends OrderPlaced, all in
// one round trip. Its order id was free when readForPlacing looked; should
// another transaction take it since (the same command applied by another
// instance across a rebalance), the insert fails on the primary key, and the
// retry finds the id taken.
func (s *Service) place(ctx context.Context, tx inbox.Tx, cmd *ordersv1.PlaceOrder, requestedAt time.Time, p priced) error {
	placedAt := time.Now().Truncate(time.Microsecond) // Postgres keeps microseconds
	n := len(p.lines)
	lineNos, skus, names, quantities, prices := make([]int16, n), make([]string, n), make([]string, n), make([]int32, n), make([]int64, n)
	event := &ordersv1.OrderPlaced{
		OrderId:     cmd.GetOrderId(),
		CustomerId:  cmd.GetCustomerId(),
		Address:     cmd.GetAddress(),
		Lines:       make([]*ordersv1.PricedLine, n),
		Total:       money(p.totalMinor, p.currency),
		RequestedAt: timestamppb.New(requestedAt),
		PlacedAt:    timestamppb.New(placedAt),
	}
	for i, l := range p.lines {
		lineNos[i], skus[i], names[i], quantities[i], prices[i] = int16(i+1), l.sku, l.name, l.quantity, l.priceMinor
		event.Lines[i] = &ordersv1.PricedLine{
			Sku:       l.sku,
			Name:      l.name,
			Quantity:  l.quantity,
			UnitPrice: money(l.priceMinor, l.currency),
			LineTotal: money(l.lineMinor, l.currency),
		}
	}
	// The order, its lines and the event in one round trip (a COPY of a few
	// lines cost three: pgx describes the table first, then COPY is a
	// two-step exchange).
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO orders (id, customer_id, address, status, total_minor, currency, requested_at, placed_at)
		VALUES ($1, $2, $3, 'placed', $4, $5, $6, $7)`,
		cmd.GetOrderId(), cmd.GetCustomerId(), cmd.GetAddress(), p.totalMinor, p.currency, requestedAt, placedAt)
	b.Queue(insertLines, cmd.GetOrderId(), lineNos, skus, names, quantities, prices)
	if err := s.queueOrderEvent(ctx, b, cmd.GetOrderId(), event); err != nil {
		return err
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("inserting order %s: %w", cmd.GetOrderId(), err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("inserting the lines of order %s: %w", cmd.GetOrderId(), err)
	}
	if _, err := br.Exec(); err != nil {
		return orderEventError(cmd.GetOrderId(), event, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("placing order %s: %w", cmd.GetOrderId(), err)
	}
	return nil
}

// insertLines inserts an order's lines: $1 the order id, then one array per
// column.
const insertLines = `
INSERT INTO order_lines (order_id, line_no, sku, name, quantity, unit_price_minor)
SELECT $1::uuid, * FROM unnest($2::smallint[], $3::text[], $4::text[], $5::integer[], $6::bigint[])`

// rejectAtPlacement stores the refused command as a rejected order, so its
// order id is taken, and appends OrderRejected.
func (s *Service) rejectAtPlacement(ctx context.Context, tx inbox.Tx, cmd *ordersv1.PlaceOrder, requestedAt time.Time, rej *rejection) error {
	var rejectedAt time.Time
	err := tx.QueryRow(ctx, `
		INSERT INTO orders (id, customer_id, address, status, total_minor, currency, requested_at,
		                    rejection_reason, rejection_detail, settled_at)
		VALUES ($1, $2, $3, 'rejected', 0, $4, $5, $6, $7, clock_timestamp())
		ON CONFLICT (id) DO NOTHING
		RETURNING settled_at`,
		cmd.GetOrderId(), stripNUL(cmd.GetCustomerId()), stripNUL(cmd.GetAddress()), noCurrency, requestedAt,
		rej.reason.String(), rej.detail).Scan(&rejectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		s.log.InfoContext(ctx, "order id already taken: PlaceOrder ignored", "order_id", cmd.GetOrderId())
		return nil
	}
	if err != nil {
		return fmt.Errorf("inserting rejected order %s: %w", cmd.GetOrderId(), err)
	}
	s.log.DebugContext(ctx, "order rejected", "order_id", cmd.GetOrderId(), "reason", rej.reason.String(), "detail", rej.detail)
	return s.appendOrderEvent(ctx, tx, cmd.GetOrderId(), &ordersv1.OrderRejected{
		OrderId:     cmd.GetOrderId(),
		Reason:      rej.reason,
		Detail:      rej.detail,
		RequestedAt: timestamppb.New(requestedAt),
		RejectedAt:  timestamppb.New(rejectedAt),
	})
}

// readForPlacing reads, in one round trip, the catalogue entries of skus
// (missing ones are absent from the map) and whether order id is taken.
func readForPlacing(ctx context.Context, tx inbox.Tx, id string, skus []string) (map[string]product, bool, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT sku, name, price_minor, currency FROM products WHERE sku = ANY($1)`, skus)
	b.Queue(`SELECT EXISTS (SELECT FROM orders WHERE id = $1)`, id)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, false, fmt.Errorf("reading products: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (product, error) {
		var p product
		return p, r.Scan(&p.sku, &p.name, &p.priceMinor, &p.currency)
	})
	if err != nil {
		return nil, false, fmt.Errorf("reading products: %w", err)
	}
	var taken bool
	if err := br.QueryRow().Scan(&taken); err != nil {
		return nil, false, fmt.Errorf("looking up order %s: %w", id, err)
	}
	if err := br.Close(); err != nil {
		return nil, false, fmt.Errorf("reading products: %w", err)
	}
	catalogue := make(map[string]product, len(list))
	for _, p := range list {
		catalogue[p.sku] = p
	}
	return catalogue, taken, nil
}

// appendOrderEvent appends an event about orderID to the order events topic.
func (s *Service) appendOrderEvent(ctx context.Context, tx inbox.Tx, orderID string, event proto.Message) error {
	_, err := s.outbox.Append(ctx, tx, s.orderEvent(orderID, event))
	if err != nil {
		return orderEventError(orderID, event, err)
	}
	return nil
}

// queueOrderEvent is appendOrderEvent on a batch sent within the transaction.
func (s *Service) queueOrderEvent(ctx context.Context, b *pgx.Batch, orderID string, event proto.Message) error {
	if _, err := s.outbox.Queue(ctx, b, s.orderEvent(orderID, event)); err != nil {
		return orderEventError(orderID, event, err)
	}
	return nil
}

func (s *Service) orderEvent(orderID string, event proto.Message) outbox.Message {
	return outbox.Message{Topic: s.topics.OrderEvents, AggregateID: orderID, Body: event}
}

func orderEventError(orderID string, event proto.Message, err error) error {
	return fmt.Errorf("appending %s for order %s: %w", event.ProtoReflect().Descriptor().Name(), orderID, err)
}
