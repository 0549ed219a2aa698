-- Payment facts on the read model, and an index the report streams in order.
--
-- order_facts is folded from two topics that have no order between them
-- (ADR 0006): a PaymentProcessed may be applied before the OrderPlaced of its
-- order. Each event therefore owns its own columns, so applying the events of
-- an order in any relative order yields the same row. PaymentProcessed owns
-- the payment_* and paid_* columns added here; the order events own the rest.
-- updated_at says when the row last changed, for operators.

-- +goose Up
ALTER TABLE order_facts
    ADD COLUMN payment_id       uuid,
    ADD COLUMN paid_minor       bigint      CHECK (paid_minor >= 0),
    ADD COLUMN paid_currency    char(3),
    ADD COLUMN paid_at          timestamptz,
    ADD COLUMN rejection_detail text,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT clock_timestamp();

-- The report reads rows in (requested_at, order_id) order through a cursor,
-- optionally within a requested_at window; this index serves both without a
-- sort, and replaces the index on requested_at alone.
DROP INDEX order_facts_requested_at_idx;
CREATE INDEX order_facts_requested_at_order_id_idx ON order_facts (requested_at, order_id);

-- +goose Down
DROP INDEX order_facts_requested_at_order_id_idx;
CREATE INDEX order_facts_requested_at_idx ON order_facts (requested_at);

ALTER TABLE order_facts
    DROP COLUMN updated_at,
    DROP COLUMN rejection_detail,
    DROP COLUMN paid_at,
    DROP COLUMN paid_currency,
    DROP COLUMN paid_minor,
    DROP COLUMN payment_id;
