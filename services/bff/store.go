package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// store is the bff's access to its own database. Safe for concurrent use.
type store struct {
	db *pgxpool.Pool
	// commands is the topic PlaceOrder goes to: the tenant's OrderCommands.
	commands string
	// outbox appends PlaceOrder, tracing it.
	outbox outbox.Writer
}

// accepted is the body of a 202 answer to POST /v1/orders, stored in the
// idempotency record and replayed from it.
type accepted struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// savedResponse is an answer to POST /v1/orders, new or replayed.
type savedResponse struct {
	status   int
	body     accepted
	replayed bool
}

// placeOrder answers an order request with one batch, one round trip: the
// request, the idempotency record, the pending view row and the PlaceOrder
// command, run by Postgres as one implicit transaction. When key is known
// already, inserting its record fails with a unique violation, which undoes
// the whole batch, and the answer is a replay of the stored response. A
// concurrent request with the same key makes the insert wait for its commit,
// so the replay then finds what it stored.
func (st *store) placeOrder(ctx context.Context, key string, hash []byte, req orderRequest, headers map[string]string) (savedResponse, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return savedResponse{}, fmt.Errorf("minting an order id: %w", err)
	}
	resp := savedResponse{status: 202, body: accepted{OrderID: id.String(), Status: statusPending}}
	batch, err := orderBatch(ctx, st.outbox, st.commands, id.String(), key, hash, req, resp, headers)
	if err != nil {
		return savedResponse{}, err
	}
	// Acquired apart from sending, so that failing to get a connection (a
	// plain "nothing written") is told apart from losing a sent write.
	conn, err := st.db.Acquire(ctx)
	if err != nil {
		return savedResponse{}, fmt.Errorf("storing the order: %w", err)
	}
	err = conn.SendBatch(ctx, batch).Close()
	conn.Release()
	if keyTaken(err) {
		resp, found, err := st.replay(ctx, key, hash)
		if err == nil && !found {
			err = errKeyInFlight // swept in between; the client may retry
		}
		return resp, err
	}
	if err != nil && mayHaveCommitted(err) {
		return savedResponse{}, fmt.Errorf("storing the order: %w: %w", errOutcomeUnknown, err)
	}
	if err != nil {
		return savedResponse{}, fmt.Errorf("storing the order: %w", err)
	}
	return resp, nil
}

// uniqueViolation is Postgres's SQLSTATE unique_violation.
const uniqueViolation = "23505"

// keyTaken reports whether err is the unique violation of an idempotency
// key that has a record already.
func keyTaken(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation && pe.TableName == "idempotency_keys"
}

// orderBatch is the statements of a new order, in an order that satisfies
// the foreign keys: the idempotency record and the view refer to the request.
// The command goes to topic, appended by w within ctx's trace.
func orderBatch(ctx context.Context, w outbox.Writer, topic, id, key string, hash []byte, req orderRequest, resp savedResponse, headers map[string]string) (*pgx.Batch, error) {
	now := time.Now().UTC()
	lines, err := json.Marshal(req.Items)
	if err != nil {
		return nil, fmt.Errorf("encoding lines: %w", err)
	}
	body, err := json.Marshal(resp.body)
	if err != nil {
		return nil, fmt.Errorf("encoding the response: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO order_requests (order_id, customer_id, address, lines, requested_at) VALUES ($1, $2, $3, $4, $5)`,
		id, req.CustomerID, req.Address, lines, now)
	b.Queue(`INSERT INTO idempotency_keys (key, request_hash, order_id, response_status, response_body)
		VALUES ($1, $2, $3, $4, $5)`, key, hash, id, resp.status, body)
	b.Queue(`INSERT INTO order_views (order_id, customer_id, status, lines, requested_at, updated_at)
		VALUES ($1, $2, 'pending', $3, $4, $4)`, id, req.CustomerID, lines, now)
	cmd := &ordersv1.PlaceOrder{OrderId: id, CustomerId: req.CustomerID, Address: req.Address, RequestedAt: timestamppb.New(now)}
	for _, it := range req.Items {
		cmd.Lines = append(cmd.Lines, &ordersv1.OrderLine{Sku: it.SKU, Quantity: int32(it.Quantity)})
	}
	if _, err := w.Queue(ctx, b, outbox.Message{
		Topic: topic, AggregateID: id, Body: cmd, Headers: headers,
	}); err != nil {
		return nil, err
	}
	return b, nil
}

// replay returns the stored response for key, if any: errKeyReused when it
// was stored for a different request.
func (st *store) replay(ctx context.Context, key string, hash []byte) (savedResponse, bool, error) {
	var (
		storedHash []byte
		status     int
		body       []byte
	)
	err := st.db.QueryRow(ctx, `SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE key = $1`, key).
		Scan(&storedHash, &status, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return savedResponse{}, false, nil
	}
	if err != nil {
		return savedResponse{}, false, fmt.Errorf("reading the idempotency record: %w", err)
	}
	if string(storedHash) != string(hash) {
		return savedResponse{}, true, errKeyReused
	}
	resp := savedResponse{status: status, replayed: true}
	if err := json.Unmarshal(body, &resp.body); err != nil {
		return savedResponse{}, true, fmt.Errorf("decoding the stored response: %w", err)
	}
	return resp, true, nil
}

// sweepKeys deletes idempotency records older than ttl, in batches, and
// returns how many it deleted.
func (st *store) sweepKeys(ctx context.Context, ttl time.Duration) (int64, error) {
	var total int64
	for {
		tag, err := st.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE key IN (
			SELECT key FROM idempotency_keys WHERE created_at < now() - $1::interval ORDER BY created_at LIMIT 1000)`, ttl)
		if err != nil {
			return total, fmt.Errorf("sweeping idempotency records: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 1000 {
			return total, nil
		}
	}
}
