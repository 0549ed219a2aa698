-- The bff's own data: the order requests it accepted, the idempotency records
-- that make POST /v1/orders safe to retry, and the order view it answers
-- GET /v1/orders/{id} from. The view is a local replica: the bff writes the
-- 'pending' row with the request, and the orders service's events move it on.

-- +goose Up
CREATE TABLE order_requests (
    order_id     uuid        PRIMARY KEY,
    customer_id  text        NOT NULL CHECK (customer_id <> ''),
    address      text        NOT NULL CHECK (address <> ''),
    lines        jsonb       NOT NULL CHECK (jsonb_typeof(lines) = 'array'),
    requested_at timestamptz NOT NULL
);

CREATE TABLE idempotency_keys (
    key             text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea       NOT NULL,     -- digest of the canonical request body: same key + other body = 422
    order_id        uuid        NOT NULL REFERENCES order_requests (order_id),
    response_status smallint    NOT NULL,
    response_body   jsonb       NOT NULL,     -- replayed as is for a retry with the same body
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE TABLE order_views (
    order_id         uuid        PRIMARY KEY,
    customer_id      text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending', 'placed', 'confirmed', 'rejected')),
    lines            jsonb       NOT NULL CHECK (jsonb_typeof(lines) = 'array'),
    total_minor      bigint      CHECK (total_minor >= 0),
    currency         char(3),
    payment_id       uuid,
    rejection_reason text,
    rejection_detail text,
    requested_at     timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

GRANT SELECT, INSERT ON order_requests TO alpes_bff;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO alpes_bff;
GRANT SELECT, INSERT, UPDATE ON order_views TO alpes_bff;

-- +goose Down
DROP TABLE order_views;
DROP TABLE idempotency_keys;
DROP TABLE order_requests;
