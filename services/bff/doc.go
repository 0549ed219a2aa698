// Package bff is alpes's single public HTTP entry (the backend for the
// frontend): customers place orders here and read their outcome here.
//
// POST /v1/orders accepts an order request and, in ONE Postgres transaction,
// stores the request, its idempotency record, a 'pending' row of the order
// view and the PlaceOrder command in the outbox (outbox). The relay
// publishes the command; nothing here talks to the orders service.
//
// GET /v1/orders/{id} answers from the bff's own order view, a replica built
// by the view consumer (outbox/inbox, subscription "bff") from the orders
// service's events; ?wait=10s long-polls until the order is confirmed or
// rejected. The consumer also keeps a replica of the product catalogue for
// GET /v1/products.
//
// # Idempotency
//
// POST /v1/orders requires an Idempotency-Key header (IETF
// draft-ietf-httpapi-idempotency-key-header, Stripe semantics). The record
// holds a SHA-256 of the canonical request (the validated request encoded in
// a fixed form, so whitespace and key order do not matter) and the response.
// The same key with the same request replays the original response (status,
// body, Location, plus Idempotent-Replayed: true); with a different request it
// is refused with 422. Concurrent requests with one key serialise on the
// key's primary key: the first commits, the others wait for it and replay.
// Records are swept after Config.IdempotencyTTL.
//
// # Unknown SKUs
//
// The bff does not refuse a SKU its product replica does not know: orders
// owns the catalogue and rejects the order (OrderRejected, reason
// unknown_product), which a client sees through the long poll in the same
// call. The replica is eventually consistent, so refusing early would turn a
// product orders already sells, but the replica has not yet seen, into a
// client error, and make the bff a second, staler authority on the catalogue.
//
// # Waiting for an outcome
//
// The view consumer calls pg_notify('bff_order_views', order_id) in the
// transaction that changes a view, so the notification is delivered only
// after that change commits and reaches every bff instance. One listener
// connection per process fans notifications out to the waiting requests; each
// waiter also re-reads its row every Config.PollInterval as a safety net for
// notifications lost while the listener reconnects.
//
// # Forwarded and aggregated routes
//
// GET /v1/orders/{id}/timeline and GET /v1/reports/orders are answered by
// the reporting service (Config.ReportingURL) through a reverse proxy that
// streams its answer unchanged; 502 when reporting does not answer.
// GET /v1/replication joins every configured relay's GET /v1/lag with the
// bff's own apply_progress (commit → applied lag per topic); an unreachable
// relay is reported in the answer, not as an error.
//
// # Errors
//
// Every handler returns an error, and one function (writeError) maps errors
// to HTTP statuses and RFC 9457 problem+json bodies. Database errors that
// mean "unreachable" become 503, which promises nothing was written: a write
// that may have committed (its batch sent, its answer lost or replaced by a
// FATAL) becomes the 500 problem saying the outcome is unknown. Validation
// errors become 400 with per-field detail.
package bff
