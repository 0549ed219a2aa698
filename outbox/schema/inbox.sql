-- The inbox: one row per applied message, inserted in the same transaction as
-- the message's effect, so a redelivered message finds its event id here and
-- changes nothing. apply_progress keeps, per source topic, the commit time of
-- the newest applied message: commit → applied lag, per service, end to end.
-- This is the one definition of the inbox: every consuming service's
-- migrations render it.

-- +goose Up
CREATE TABLE inbox (
    event_id            uuid        PRIMARY KEY,
    topic               text        NOT NULL,
    type                text        NOT NULL,
    source_committed_at timestamptz,            -- commit time at the source database, from the message
    applied_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX inbox_applied_at_idx ON inbox (applied_at);

CREATE TABLE apply_progress (
    topic               text        PRIMARY KEY,
    last_event_id       uuid        NOT NULL,
    last_committed_at   timestamptz NOT NULL,   -- source commit time of the newest applied message
    last_applied_at     timestamptz NOT NULL,
    applied_count       bigint      NOT NULL DEFAULT 0
);

GRANT SELECT, INSERT, DELETE ON inbox TO {{.Role}};
GRANT SELECT, INSERT, UPDATE ON apply_progress TO {{.Role}};

-- +goose Down
DROP TABLE apply_progress;
DROP TABLE inbox;
