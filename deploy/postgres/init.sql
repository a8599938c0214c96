-- Run once as a superuser on a fresh PostgreSQL/TimescaleDB, before `tally-collector migrate`.
CREATE ROLE tally LOGIN PASSWORD 'change-me';
CREATE DATABASE tally OWNER tally;
\connect tally
-- TimescaleDB is optional: with it, readings become a compressed hypertable and usage gets
-- continuous aggregates; without it Tally uses native range partitioning (docs/operations.md).
CREATE EXTENSION IF NOT EXISTS timescaledb;
