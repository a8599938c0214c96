-- Ingest schema (helper B): the tables every other part of Tally reads.
-- `readings` itself comes in 0002, in a TimescaleDB or a plain-PostgreSQL flavour.

CREATE TABLE series (
    series_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id  text NOT NULL,
    meter      text NOT NULL,
    metric     text NOT NULL,
    unit       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('cumulative', 'delta', 'gauge')),
    first_seen timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, meter, metric)
);

-- One row per accepted batch: (device_id, seq) is the permanent deduplication key.
CREATE TABLE batches (
    device_id     text NOT NULL,
    seq           bigint NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    reading_count integer NOT NULL,
    PRIMARY KEY (device_id, seq)
);

-- Per-device ingest counters, kept in the ingest transaction (cheap /devices listings).
CREATE TABLE device_ingest (
    device_id  text PRIMARY KEY,
    batches    bigint NOT NULL,
    readings   bigint NOT NULL,
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL,
    last_seen  timestamptz NOT NULL
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    field       text
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);

-- One row per series per committed ingest flush: the range of reading times the flush touched.
-- Written in the same transaction as the readings; consumed (and deleted) by the usage engine.
CREATE TABLE usage_dirty (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_id bigint NOT NULL REFERENCES series (series_id),
    ts_from   timestamptz NOT NULL,
    ts_to     timestamptz NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ts_from <= ts_to)
);
CREATE INDEX usage_dirty_series ON usage_dirty (series_id);

-- Latest retained status message of each agent (tally/v1/<device>/status).
CREATE TABLE device_status (
    device_id    text PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    state        text,
    buffer_depth bigint,
    payload      jsonb NOT NULL
);
