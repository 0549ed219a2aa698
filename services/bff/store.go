package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/internal/eventcatalog"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/outbox"
)

// store is the bff's access to its own database. Safe for concurrent use.
type store struct {
	db *pgxpool.Pool
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

// errKeyTaken is returned inside placeOrder's transaction when another
// request committed the same idempotency key first.
var errKeyTaken = errors.New("idempotency key taken")

// placeOrder answers an order request: a replay of the stored response when
// key is known, else one transaction with the request, the idempotency
// record, the pending view row and the PlaceOrder command.
func (st *store) placeOrder(ctx context.Context, key string, hash []byte, req orderRequest, headers map[string]string) (savedResponse, error) {
	if resp, found, err := st.replay(ctx, key, hash); err != nil || found {
		return resp, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return savedResponse{}, fmt.Errorf("minting an order id: %w", err)
	}
	resp := savedResponse{status: 202, body: accepted{OrderID: id.String(), Status: statusPending}}
	err = pgx.BeginFunc(ctx, st.db, func(tx pgx.Tx) error {
		return insertOrder(ctx, tx, id.String(), key, hash, req, resp, headers)
	})
	if errors.Is(err, errKeyTaken) {
		// The other request has committed: ON CONFLICT waited for it.
		resp, found, err := st.replay(ctx, key, hash)
		if err == nil && !found {
			err = errKeyInFlight // swept in between; the client may retry
		}
		return resp, err
	}
	if err != nil {
		return savedResponse{}, err
	}
	return resp, nil
}

func insertOrder(ctx context.Context, tx pgx.Tx, id, key string, hash []byte, req orderRequest, resp savedResponse, headers map[string]string) error {
	now := time.Now().UTC()
	lines, err := json.Marshal(req.Items)
	if err != nil {
		return fmt.Errorf("encoding lines: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_requests (order_id, customer_id, address, lines, requested_at) VALUES ($1, $2, $3, $4, $5)`,
		id, req.CustomerID, req.Address, lines, now); err != nil {
		return fmt.Errorf("storing the order request: %w", err)
	}
	body, err := json.Marshal(resp.body)
	if err != nil {
		return fmt.Errorf("encoding the response: %w", err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, order_id, response_status, response_body)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`, key, hash, id, resp.status, body)
	if err != nil {
		return fmt.Errorf("storing the idempotency record: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errKeyTaken
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_views (order_id, customer_id, status, lines, requested_at, updated_at)
		VALUES ($1, $2, 'pending', $3, $4, $4)`, id, req.CustomerID, lines, now); err != nil {
		return fmt.Errorf("storing the order view: %w", err)
	}
	cmd := &ordersv1.PlaceOrder{OrderId: id, CustomerId: req.CustomerID, Address: req.Address, RequestedAt: timestamppb.New(now)}
	for _, it := range req.Items {
		cmd.Lines = append(cmd.Lines, &ordersv1.OrderLine{Sku: it.SKU, Quantity: int32(it.Quantity)})
	}
	_, err = outbox.Append(ctx, tx, outbox.Message{
		Topic: eventcatalog.TopicOrderCommands, AggregateID: id, Body: cmd, Headers: headers,
	})
	return err
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
