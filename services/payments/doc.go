// Package payments is the payments service: it charges every placed order
// through a deterministic fake gateway and publishes the outcome, in its own
// database (migrations/payments), through its transactional outbox.
//
// A Service consumes Topics.OrderEvents of its deployment's tenant
// (Config.Topics, eventcatalog.Topics) with outbox/inbox and the
// Key_Shared subscription "payments". For each alpes.orders.v1.OrderPlaced
// it, in the inbox's one transaction:
//
//  1. stores the order snapshot it needs (id, customer, total, placed_at:
//     order_snapshots, a replica built only from OrderPlaced);
//  2. asks the Gateway for a decision;
//  3. inserts the payment (approved or declined, a new UUIDv7 as its id);
//  4. appends alpes.payments.v1.PaymentProcessed, keyed by the order id.
//
// OrderConfirmed and OrderRejected are known and skipped (inbox.Skip).
//
// # The fake gateway
//
// Gateway decides from the charge alone, so the same order always gets the
// same outcome and tests and the load generator can choose outcomes. With
// DefaultGateway the rules, checked in this order, are:
//
//   - a customer id starting with "blocked-" has a blocked card: declined,
//     "card blocked";
//   - a currency other than EUR is not accepted: declined;
//   - a total above 5,000.00 EUR (500000 minor units) is declined, "amount
//     … exceeds the limit of 5000.00 EUR"; exactly the limit is approved;
//   - everything else is approved.
//
// # Idempotency
//
// One payment per order: the snapshot's primary key and payments.order_id
// are unique. An OrderPlaced for an order already snapshotted (a re-emission
// under a new event id) is a no-op; the inbox drops exact redeliveries.
// An OrderPlaced that cannot be charged as it is (an order id that is not a
// UUID, no total, a malformed currency, a negative amount, a NUL character
// in the customer id) is parked with inbox.ErrPark for an operator: guessing
// an amount is worse than waiting.
//
// # Concurrency
//
// Any number of Services may run on one database: the subscription is
// Key_Shared, so one order's messages reach one instance at a time, and the
// unique keys settle any race.
package payments
