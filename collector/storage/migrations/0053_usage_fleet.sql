-- Fleet rollup of derived usage (issue 10): usage_15m summed over every meter of a unit, per
-- UTC 15-minute bucket, so fleet analytics read one row per quarter hour instead of one per
-- meter and quarter hour. Kept in the same transaction as usage_15m by the usage refresh and
-- the backfill (collector.storage.usage_fleet.apply_stage_deltas): each staged bucket adds
-- (new - old) of the rows it rewrites. The same table in both schema flavours.

CREATE TABLE usage_fleet_15m (
    unit          text NOT NULL,
    bucket        timestamptz NOT NULL,                -- start of [bucket, bucket + 15 min)
    quantity      double precision NOT NULL DEFAULT 0,  -- sum of usage_15m.quantity
    estimated     double precision NOT NULL DEFAULT 0,  -- sum of usage_15m.estimated
    reading_count bigint NOT NULL DEFAULT 0,            -- sum of usage_15m.reading_count
    PRIMARY KEY (unit, bucket)
);

INSERT INTO usage_fleet_15m (unit, bucket, quantity, estimated, reading_count)
SELECT s.unit, u.bucket, sum(u.quantity), sum(u.estimated), sum(u.reading_count)
FROM usage_15m u JOIN series s ON s.series_id = u.series_id
GROUP BY s.unit, u.bucket;
