-- Readings partitions exported to Parquet and dropped (tally-collector archive; docs/operations.md,
-- "Retention and archive"). The raw-readings API and the usage backfill read these files where a
-- range reaches into an archived month.
CREATE TABLE readings_archive (
    partition    text PRIMARY KEY,                 -- readings_pYYYYMM, as it was attached
    ts_from      timestamptz NOT NULL,
    ts_to        timestamptz NOT NULL,             -- [ts_from, ts_to)
    path         text NOT NULL,                    -- absolute path of the Parquet file
    readings     bigint NOT NULL,
    bytes        bigint NOT NULL,
    sha256       text NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ts_to > ts_from)
);
CREATE INDEX readings_archive_range ON readings_archive (ts_from, ts_to);
