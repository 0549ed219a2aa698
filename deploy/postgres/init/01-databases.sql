-- A database per service (docs/adr/0003-hybrid-decentralized-storage.md).
-- In production each may live on its own Postgres; here they share one server.
CREATE DATABASE bff;
CREATE DATABASE orders;
CREATE DATABASE payments;
CREATE DATABASE reporting;
