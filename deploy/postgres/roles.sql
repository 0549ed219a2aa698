-- Create alpes's logins ahead of migrations, as a superuser, when the
-- migrations themselves run as a less privileged owner (in Postgres 15 only a
-- superuser may create a REPLICATION role). The migrations create the same
-- roles when they are absent and never change them when they exist.
-- Set the passwords from your secret store, e.g.
--   psql -v relay_password="$RELAY_PASSWORD" … -f roles.sql
-- and never commit them.

CREATE ROLE alpes_relay LOGIN REPLICATION PASSWORD :'relay_password';
CREATE ROLE alpes_bff LOGIN PASSWORD :'bff_password';
CREATE ROLE alpes_orders LOGIN PASSWORD :'orders_password';
CREATE ROLE alpes_payments LOGIN PASSWORD :'payments_password';
CREATE ROLE alpes_reporting LOGIN PASSWORD :'reporting_password';
