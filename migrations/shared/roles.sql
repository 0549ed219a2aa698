-- Roles are cluster-wide, so they are created only when absent and never
-- dropped by a down migration: another database of the cluster may use them.
-- Creating a REPLICATION role needs a superuser; a deployment that migrates
-- as a lesser role creates these roles beforehand (deploy/ shows how).
-- Passwords are set outside migrations, from the deployment's secrets.

-- +goose Up
-- The {{.Service}} service's own login: reads and writes its tables, nothing more.
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE {{.Role}} LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created before, by this or another database's migration
END
$$;
-- +goose StatementEnd
{{if .Producer}}
-- The relay's login: streams the outbox through logical replication and may
-- read (replay) and delete (retention sweep) outbox rows. Not a superuser.
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE {{.RelayRole}} LOGIN REPLICATION;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created before, by this or another database's migration
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA public TO {{.Role}}, {{.RelayRole}};

-- +goose Down
REVOKE USAGE ON SCHEMA public FROM {{.Role}}, {{.RelayRole}};
{{- else}}
GRANT USAGE ON SCHEMA public TO {{.Role}};

-- +goose Down
REVOKE USAGE ON SCHEMA public FROM {{.Role}};
{{- end}}
