-- The payments service keeps a snapshot of each placed order (a replica built
-- from alpes.orders.v1.OrderPlaced: what it must charge) and one payment per
-- order, approved or declined by the fake gateway. Payments are never updated.

-- +goose Up
CREATE TABLE order_snapshots (
    order_id    uuid        PRIMARY KEY,
    customer_id text        NOT NULL,
    total_minor bigint      NOT NULL CHECK (total_minor >= 0),
    currency    char(3)     NOT NULL,
    placed_at   timestamptz NOT NULL
);

CREATE TABLE payments (
    id             uuid        PRIMARY KEY,
    order_id       uuid        NOT NULL UNIQUE REFERENCES order_snapshots (order_id),
    amount_minor   bigint      NOT NULL CHECK (amount_minor >= 0),
    currency       char(3)     NOT NULL,
    status         text        NOT NULL CHECK (status IN ('approved', 'declined')),
    decline_reason text,
    processed_at   timestamptz NOT NULL,
    CHECK ((status = 'declined') = (decline_reason IS NOT NULL))
);

GRANT SELECT, INSERT ON order_snapshots TO alpes_payments;
GRANT SELECT, INSERT ON payments TO alpes_payments;

-- +goose Down
DROP TABLE payments;
DROP TABLE order_snapshots;
