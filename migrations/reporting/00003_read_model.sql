-- Reporting's read model: one row per order with its current facts, and the
-- per-order timeline (the prototype's log service) with one entry per event,
-- both rebuilt from the event streams alone.

-- +goose Up
CREATE TABLE order_facts (
    order_id         uuid        PRIMARY KEY,
    customer_id      text,
    status           text        NOT NULL CHECK (status IN ('placed', 'confirmed', 'rejected')),
    total_minor      bigint      CHECK (total_minor >= 0),
    currency         char(3),
    line_count       integer,
    item_count       integer,
    payment_status   text        CHECK (payment_status IN ('approved', 'declined')),
    rejection_reason text,
    requested_at     timestamptz,
    placed_at        timestamptz,
    settled_at       timestamptz
);
CREATE INDEX order_facts_requested_at_idx ON order_facts (requested_at);

CREATE TABLE timeline_entries (
    order_id            uuid        NOT NULL,
    event_id            uuid        NOT NULL UNIQUE,
    type                text        NOT NULL,  -- fully qualified message name
    occurred_at         timestamptz NOT NULL,  -- the time the event itself states
    summary             text        NOT NULL,
    source_committed_at timestamptz,
    recorded_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, occurred_at, event_id)
);

GRANT SELECT, INSERT, UPDATE ON order_facts TO alpes_reporting;
GRANT SELECT, INSERT ON timeline_entries TO alpes_reporting;

-- +goose Down
DROP TABLE timeline_entries;
DROP TABLE order_facts;
