-- Messages the consumer framework (outbox/inbox) set aside instead of
-- applying: an alpes-type this service does not know, a payload that does not
-- decode, a schema version that does not match its topic, a handler that asked
-- for it, or a message dead-lettered after its retries. Each is kept here with
-- its envelope and bytes, inserted in the same transaction as its inbox row,
-- so it is acknowledged once, never redelivered in a loop, and can be
-- inspected or replayed by hand. This is the one definition: every consuming
-- service's migrations render it.

-- +goose Up
CREATE TABLE parked_messages (
    event_id   uuid        PRIMARY KEY,
    topic      text        NOT NULL,
    type       text        NOT NULL,   -- the alpes-type property as received ('' when absent)
    properties jsonb       NOT NULL,   -- every message property, as received
    payload    bytea       NOT NULL,
    reason     text        NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX parked_messages_parked_at_idx ON parked_messages (parked_at);

GRANT SELECT, INSERT ON parked_messages TO {{.Role}};

-- +goose Down
DROP TABLE parked_messages;
