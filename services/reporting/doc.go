// Package reporting is the alpes reporting service: a read model of orders
// and payments built only from their events, a per-order timeline (the
// prototype's log service), and reports in formats chosen by a registry.
//
// # Read model
//
// A consumer of outbox/inbox (Key_Shared subscription "reporting") applies
// OrderPlaced, OrderConfirmed and OrderRejected from the order events topic
// and PaymentProcessed from the payment events topic of its deployment's
// tenant (Config.Topics; persistent://alpes/orders/events.v1 and
// persistent://alpes/payments/events.v1 by default), each exactly once, in the
// transaction that records it in the inbox. Every event upserts its order's
// row of order_facts and adds one row to timeline_entries, stamped with the
// time the event states, a human summary, and the source commit time.
//
// The two topics have no order between them, so a payment may be applied
// before the order it pays for. The upserts (facts_sql.go) make the result
// independent of arrival order: each event owns its columns, a column two
// events share is only filled by the non-owner while it is empty, and the
// status only moves forward (placed, then confirmed or rejected). A payment
// seen first creates the row as placed, which payments' causality guarantees,
// with the order's details empty until OrderPlaced arrives. An order that
// receives both terminal events, an unknown payment status, or an order id
// that is not a UUID is parked in parked_messages for an operator.
//
// # HTTP API
//
//	GET /v1/reports/orders?format=csv|json|ndjson|html[&from=…&to=…]
//	    the orders report, one row per order in (requested_at, order_id)
//	    order, optionally for orders requested in [from, to) (RFC 3339);
//	    format defaults to json; rows are streamed from a server-side
//	    cursor, FetchSize at a time, in one consistent snapshot.
//	GET /v1/reports/formats          the registered formats
//	GET /v1/orders/{id}/timeline     an order's events, oldest first
//	GET /healthz, /readyz, /metrics  liveness, readiness (database, consumer, broker), Prometheus (docs/metrics.md)
//
// Errors are RFC 9457 application/problem+json; an unknown format is a 400
// whose "formats" member lists the known ones.
//
// # Adding a report format
//
// A format is one new file in this package, and nothing else changes:
//
//  1. Declare a type implementing Format: Name (the format query value),
//     ContentType, and NewWriter, which returns a RowWriter for one report.
//     The RowWriter's WriteRow receives the rows one by one and should write
//     each through; Finish writes whatever closes the document. Keep only
//     bounded state (counts, sums), never the rows: reports are streamed.
//
//  2. In the same file, add a method of Builtins that returns it:
//
//     func (Builtins) XLSX() Format { return xlsxFormat{} }
//
// DefaultRegistry finds every such method by reflection, so the format is
// served, listed by /v1/reports/formats, and covered by the test that checks
// every registered format carries the same rows as the others.
//
// # Concurrency
//
// A Service's Handler is safe for concurrent use. The consumer applies
// messages on one goroutine per instance; run more instances to scale out.
// Key_Shared keeps an order's events of one topic on one instance, but its
// orders and payments events may be applied by two instances at once: each
// upsert is atomic (INSERT … ON CONFLICT DO UPDATE) and they commute, so the
// row ends the same; a deadlock between two batches is a database error the
// inbox retries.
package reporting
