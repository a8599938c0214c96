-- readings on plain PostgreSQL: range-partitioned by ts into monthly partitions (UTC months),
-- plus a DEFAULT partition that catches anything outside the created months.
-- tally_ensure_reading_partitions() creates upcoming months (the collector calls it at start-up
-- and every few hours); rows already in the DEFAULT partition for that month are moved.

CREATE TABLE readings (
    series_id bigint NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (ts);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;

CREATE INDEX readings_series_ts ON readings (series_id, ts);

CREATE FUNCTION tally_ensure_reading_partitions(from_ts timestamptz, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    first_month timestamp := date_trunc('month', from_ts AT TIME ZONE 'UTC');
    lo timestamptz;
    hi timestamptz;
    part text;
    created integer := 0;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        lo := (first_month + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := (first_month + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part := 'readings_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM readings_default WHERE ts >= %L AND ts < %L RETURNING *)'
            ' INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

SELECT tally_ensure_reading_partitions(now() - INTERVAL '1 month', 4);
