// Package orders is the orders service: it turns PlaceOrder commands into
// priced orders and settles them on payment outcomes, in its own database
// (migrations/orders), publishing every fact through its transactional
// outbox (docs/adr/0001-commands-and-events.md). An order is settled once
// it is confirmed or rejected (settled_at): its final state.
//
// A Service consumes, with the consumer framework outbox/inbox and the
// Key_Shared subscription "orders", two topics of its deployment's tenant
// (Config.Topics, eventcatalog.Topics):
//
//   - Topics.OrderCommands, alpes.orders.v1.PlaceOrder: the
//     command is checked (at least one line, every quantity at least 1, no
//     NUL characters, at most MaxLines lines), every line is priced from the
//     products table, and the order with its lines is inserted together with
//     an OrderPlaced carrying the whole priced order. A SKU missing from the
//     catalogue rejects the order with REJECTION_REASON_UNKNOWN_PRODUCT; a
//     malformed command, lines priced in several currencies, or a total
//     beyond int64 with REJECTION_REASON_INVALID_ORDER. A rejected command
//     is stored too, as an order in status rejected with a zero total in
//     currency XXX (ISO 4217's "no currency": it was never priced), so that
//     the order id is taken either way.
//   - Topics.PaymentEvents, alpes.payments.v1.PaymentProcessed:
//     an approved payment confirms a placed order (OrderConfirmed), a
//     declined one rejects it (OrderRejected, REJECTION_REASON_PAYMENT_DECLINED,
//     detail = the decline reason).
//
// Every effect happens in the inbox's transaction: the state change, the
// outbox row and the inbox row commit together or not at all.
//
// # Idempotency and anomalies
//
// The inbox drops a message whose event id it has seen. Beyond that:
//
//   - A PlaceOrder whose order_id is already stored, placed or rejected, is a
//     no-op, whatever it carries: the order id is the command's identity
//     (proto/alpes/orders/v1/commands.proto).
//   - A PaymentProcessed for an order already settled by the same payment id
//     (payments re-emitting its outcome) is a no-op.
//   - Messages that must not be guessed at are parked (inbox.ErrPark: kept in
//     parked_messages with the reason, acknowledged, never retried in a
//     loop) for an operator: a PaymentProcessed with a status this version
//     does not know (ADR 0002), for an order already settled by another
//     payment (a possible double charge), for an order rejected at
//     placement, or approved for an amount other than the order's total. A
//     settled order never changes again.
//   - A PaymentProcessed for an order orders does not find is retried with
//     backoff before it is dead-lettered (and parked): Postgres makes a
//     commit decodable a moment before other sessions see it, so under load
//     a payment can come back before its order is visible.
//   - A command or event whose ids are not UUIDs cannot be stored and is
//     parked as well.
//
// # The catalogue
//
// Orders owns the products table and publishes it as
// alpes.catalog.v1.ProductUpdated on Topics.CatalogEvents, keyed
// by SKU. At startup, and only then, Run publishes every product whose
// current state (its updated_at) has not been published yet, and stamps the
// rows' published_updated_at in the same transaction; a trigger moves
// updated_at on every change of name, price or currency
// (migrations/orders/00007_catalogue_publishing.sql). A restart therefore
// publishes nothing new, and a changed product exactly once.
//
// # Concurrency
//
// Any number of Services, in one process or many, may run on one database:
// the subscription is Key_Shared, the catalogue publication locks the rows
// it publishes, and a duplicate order insert waits for and then yields to
// the first.
package orders
