-- Usage engine (helper D), TimescaleDB flavour: usage_15m is a hypertable and hourly/daily
-- UTC rollups are continuous aggregates (refreshed by the collector for the exact ranges it
-- changed, through usage_rollup_pending, so weeks-late data reaches the rollups too).
-- usage_15m: derived interval usage per series per UTC 15-minute bucket, maintained
-- incrementally by collector.storage.usage_store.refresh_usage from usage_dirty.
-- Same tables and columns as the plain flavour, plus the continuous aggregates below.

CREATE TABLE meter_config (
    series_id           bigint PRIMARY KEY REFERENCES series (series_id) ON DELETE CASCADE,
    register_max        double precision CHECK (register_max > 0),       -- wrap value (modulus)
    max_rate_per_hour   double precision CHECK (max_rate_per_hour > 0),  -- physical max / hour
    expected_interval_s double precision NOT NULL DEFAULT 900 CHECK (expected_interval_s > 0),
    gap_factor          double precision NOT NULL DEFAULT 2.5 CHECK (gap_factor >= 1),
    short_gap_s         double precision NOT NULL DEFAULT 3600 CHECK (short_gap_s >= 0),
    profile_weeks       integer NOT NULL DEFAULT 3 CHECK (profile_weeks >= 0),
    glitch_window       integer NOT NULL DEFAULT 3 CHECK (glitch_window >= 0),
    jitter_tolerance    double precision NOT NULL DEFAULT 0 CHECK (jitter_tolerance >= 0),
    max_gap_s           double precision NOT NULL DEFAULT 2678400 CHECK (max_gap_s > 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE meter_replacements (
    series_id   bigint NOT NULL REFERENCES series (series_id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,       -- readings at or after `at` come from the new meter
    old_final   double precision NOT NULL,  -- last register value of the old meter
    new_initial double precision NOT NULL,  -- first register value of the new meter
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, at)
);

CREATE TABLE usage_15m (
    series_id     bigint NOT NULL,
    bucket        timestamptz NOT NULL,            -- start of [bucket, bucket + 15 min)
    quantity      double precision NOT NULL,       -- billable usage (actual + estimated)
    estimated     double precision NOT NULL DEFAULT 0,  -- part of quantity estimated by VEE
    quarantined   double precision NOT NULL DEFAULT 0,  -- held out: above physical maximum
    coverage      double precision NOT NULL DEFAULT 1,  -- fraction of the bucket known/estimated
    reading_count integer NOT NULL DEFAULT 0,
    flags         integer NOT NULL DEFAULT 0,      -- collector.usage.UsageFlag bits
    peak          double precision,                -- gauges: highest reading in the bucket
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, bucket)
);
SELECT create_hypertable(
    'usage_15m', 'bucket',
    chunk_time_interval => INTERVAL '30 days',
    create_default_indexes => false
);

-- The same 15-minute values packed per series and UTC day, kept in step by refresh_usage:
-- 96 quarter hours (0 where usage_15m has no row) as raw big-endian binary (float8send /
-- int4send, concatenated). Bulk readers (billing runs) read 96× fewer rows than from
-- usage_15m, and PostgreSQL ships the bytes without per-element work.
CREATE TABLE usage_15m_daily (
    series_id     bigint NOT NULL,
    day           timestamptz NOT NULL,                              -- UTC midnight
    quantity      bytea NOT NULL CHECK (length(quantity) = 768),     -- 96 × float8
    estimated     bytea NOT NULL CHECK (length(estimated) = 768),    -- 96 × float8
    reading_count bytea NOT NULL CHECK (length(reading_count) = 384),-- 96 × int4
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, day)
);

-- Ranges of usage_15m changed since the rollups were last refreshed (consumed after each refresh
-- by refresh_continuous_aggregate on usage_1h and usage_1d).
CREATE TABLE usage_rollup_pending (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_from timestamptz NOT NULL,
    ts_to   timestamptz NOT NULL
);

CREATE MATERIALIZED VIEW usage_1h WITH (timescaledb.continuous) AS
SELECT series_id,
       time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       sum(quantity)      AS quantity,
       sum(estimated)     AS estimated,
       sum(quarantined)   AS quarantined,
       sum(coverage) / 4  AS coverage,
       sum(reading_count) AS reading_count,
       bit_or(flags)      AS flags,
       max(peak)          AS peak
FROM usage_15m
GROUP BY series_id, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW usage_1d WITH (timescaledb.continuous) AS
SELECT series_id,
       time_bucket(INTERVAL '1 day', bucket) AS bucket,
       sum(quantity)      AS quantity,
       sum(estimated)     AS estimated,
       sum(quarantined)   AS quarantined,
       sum(coverage) / 96 AS coverage,
       sum(reading_count) AS reading_count,
       bit_or(flags)      AS flags,
       max(peak)          AS peak
FROM usage_15m
GROUP BY series_id, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

-- real-time aggregation: rows not yet materialised are read from usage_15m
ALTER MATERIALIZED VIEW usage_1h SET (timescaledb.materialized_only = false);
ALTER MATERIALIZED VIEW usage_1d SET (timescaledb.materialized_only = false);
