package reporting

// The upserts that fold events into order_facts. Events of the orders topic
// and of the payments topic arrive in no particular order relative to each
// other (ADR 0006), and a replayed or dead-lettered message may come late even
// within its topic. So no statement depends on which event came first:
//
//   - Any event creates the order's row if it is missing. An event that is not
//     OrderPlaced creates it with only what it knows; PaymentProcessed creates
//     it as placed, which is causally certain (payments charges only placed
//     orders), leaving the order's details NULL until OrderPlaced fills them.
//   - Each event owns its columns. OrderPlaced owns the order's details (it
//     overwrites them); PaymentProcessed owns payment_status and the paid_*
//     columns; the terminal events own settled_at and the rejection columns.
//     A column two events carry (the total, the payment id, requested_at) is
//     owned by one and only filled by the other while it is NULL: both state
//     the same value, and the owner wins if they ever differ.
//   - Status only moves forward: OrderPlaced and PaymentProcessed never touch
//     an existing row's status, a terminal event sets it, and a terminal
//     event never overturns the other terminal status (the handler parks it).
//
// Applying the events of an order in any order therefore yields one row.

// upsertPlaced applies OrderPlaced: $1 order id, $2 customer, $3 total,
// $4 currency, $5 lines, $6 items, $7 requested_at, $8 placed_at.
const upsertPlaced = `
INSERT INTO order_facts (order_id, customer_id, status, total_minor, currency, line_count, item_count, requested_at, placed_at)
VALUES ($1, $2, 'placed', $3, $4, $5, $6, $7, $8)
ON CONFLICT (order_id) DO UPDATE SET
    customer_id  = EXCLUDED.customer_id,
    total_minor  = EXCLUDED.total_minor,
    currency     = EXCLUDED.currency,
    line_count   = EXCLUDED.line_count,
    item_count   = EXCLUDED.item_count,
    requested_at = EXCLUDED.requested_at,
    placed_at    = EXCLUDED.placed_at,
    updated_at   = clock_timestamp()`

// upsertConfirmed applies OrderConfirmed: $1 order id, $2 total, $3 currency,
// $4 payment id, $5 confirmed_at.
const upsertConfirmed = `
INSERT INTO order_facts (order_id, status, total_minor, currency, payment_id, settled_at)
VALUES ($1, 'confirmed', $2, $3, $4, $5)
ON CONFLICT (order_id) DO UPDATE SET
    status      = 'confirmed',
    total_minor = COALESCE(order_facts.total_minor, EXCLUDED.total_minor),
    currency    = COALESCE(order_facts.currency, EXCLUDED.currency),
    payment_id  = COALESCE(order_facts.payment_id, EXCLUDED.payment_id),
    settled_at  = EXCLUDED.settled_at,
    updated_at  = clock_timestamp()
WHERE order_facts.status <> 'rejected'`

// upsertRejected applies OrderRejected: $1 order id, $2 reason, $3 detail,
// $4 requested_at, $5 rejected_at.
const upsertRejected = `
INSERT INTO order_facts (order_id, status, rejection_reason, rejection_detail, requested_at, settled_at)
VALUES ($1, 'rejected', $2, $3, $4, $5)
ON CONFLICT (order_id) DO UPDATE SET
    status           = 'rejected',
    rejection_reason = EXCLUDED.rejection_reason,
    rejection_detail = EXCLUDED.rejection_detail,
    requested_at     = COALESCE(order_facts.requested_at, EXCLUDED.requested_at),
    settled_at       = EXCLUDED.settled_at,
    updated_at       = clock_timestamp()
WHERE order_facts.status <> 'confirmed'`

// upsertPayment applies PaymentProcessed: $1 order id, $2 payment id,
// $3 approved or declined, $4 amount, $5 currency, $6 processed_at.
const upsertPayment = `
INSERT INTO order_facts (order_id, status, payment_id, payment_status, paid_minor, paid_currency, paid_at)
VALUES ($1, 'placed', $2, $3, $4, $5, $6)
ON CONFLICT (order_id) DO UPDATE SET
    payment_id     = COALESCE(EXCLUDED.payment_id, order_facts.payment_id),
    payment_status = EXCLUDED.payment_status,
    paid_minor     = EXCLUDED.paid_minor,
    paid_currency  = EXCLUDED.paid_currency,
    paid_at        = EXCLUDED.paid_at,
    updated_at     = clock_timestamp()`

// insertEntry adds an event's timeline entry: $1 order id, $2 event id,
// $3 type, $4 occurred_at, $5 summary, $6 source commit time. The inbox
// already drops duplicates; the conflict clause keeps a replay harmless even
// if an inbox row was deleted to re-apply a parked message.
const insertEntry = `
INSERT INTO timeline_entries (order_id, event_id, type, occurred_at, summary, source_committed_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (event_id) DO NOTHING`
