-- docker-compose only: alpes's logins with the local development password
-- (the migrations create the same roles without one when they are absent).
-- Never use this password, or this file, anywhere but a laptop.
CREATE ROLE alpes_relay LOGIN REPLICATION PASSWORD 'alpes-dev-only';
CREATE ROLE alpes_bff LOGIN PASSWORD 'alpes-dev-only';
CREATE ROLE alpes_orders LOGIN PASSWORD 'alpes-dev-only';
CREATE ROLE alpes_payments LOGIN PASSWORD 'alpes-dev-only';
CREATE ROLE alpes_reporting LOGIN PASSWORD 'alpes-dev-only';
