-- The transactional outbox (docs/adr/0005-outbox-and-cleanup.md). Every
-- message this service publishes is inserted here in the same transaction as
-- the state change it describes. Rows are never updated; the relay streams the
-- inserts through the publication alpes_outbox and deletes rows only once they
-- are older than the retention window. The definition is the same in every
-- producing service; a test keeps the copies identical.

-- +goose Up
CREATE TABLE outbox (
    id             uuid        PRIMARY KEY,       -- event id: stable across re-sends, deduplicated by consumers
    topic          text        NOT NULL CHECK (topic <> ''),
    aggregate_id   text        NOT NULL CHECK (aggregate_id <> ''), -- the Pulsar message key
    type           text        NOT NULL CHECK (type <> ''),         -- fully qualified protobuf message name
    schema_version integer     NOT NULL DEFAULT 1 CHECK (schema_version > 0),
    payload        bytea       NOT NULL,          -- the protobuf-encoded message
    headers        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'), -- e.g. W3C trace context
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX outbox_created_at_idx ON outbox (created_at);

-- Inserts only: UPDATE, DELETE (the retention sweep) and TRUNCATE never reach the relay.
CREATE PUBLICATION alpes_outbox FOR TABLE outbox WITH (publish = 'insert');

GRANT INSERT ON outbox TO alpes_bff;
GRANT SELECT, DELETE ON outbox TO alpes_relay;

-- +goose Down
DROP PUBLICATION alpes_outbox;
DROP TABLE outbox;
