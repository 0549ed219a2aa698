-- The transactional outbox (docs/adr/0005-outbox-and-cleanup.md). Every
-- message this service publishes is inserted here in the same transaction as
-- the state change it describes. Rows are never updated; the relay streams the
-- inserts through the publication {{.Publication}} and deletes rows only once
-- they are older than the retention window. This is the one definition of
-- the outbox: every producing service's migrations render it.

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
CREATE PUBLICATION {{.Publication}} FOR TABLE outbox WITH (publish = 'insert');

GRANT INSERT ON outbox TO {{.Role}};
GRANT SELECT, DELETE ON outbox TO {{.RelayRole}};

-- +goose Down
DROP PUBLICATION {{.Publication}};
DROP TABLE outbox;
