-- readings as a TimescaleDB hypertable: 1-day chunks on ts, compressed after 7 days
-- (segmented by series so that a meter's history decompresses on its own).

-- migrate() picks this flavour when the extension is *available*; it may not be created yet
-- in this database (only deploy/postgres/init.sql creates it).
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE readings (
    series_id bigint NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL
);

SELECT create_hypertable(
    'readings', 'ts',
    chunk_time_interval => INTERVAL '1 day',
    create_default_indexes => false
);

CREATE INDEX readings_series_ts ON readings (series_id, ts);

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'ts'
);

SELECT add_compression_policy('readings', INTERVAL '7 days');

-- Same interface as the plain flavour; TimescaleDB creates chunks itself.
CREATE FUNCTION tally_ensure_reading_partitions(from_ts timestamptz, months integer)
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
