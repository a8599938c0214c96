-- The collector trusts nothing it did not register: batch digests for conflict detection and
-- the conflicts themselves (same (device, seq), different readings), kept for staff.

-- SHA-256 of the batch's readings (collector/ingest/batch_identity.py); NULL for batches stored
-- before this migration (a later batch under such a key is compared by reading count only).
ALTER TABLE batches ADD COLUMN digest bytea;

CREATE TABLE batch_conflicts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id       text NOT NULL,
    seq             bigint NOT NULL,
    received_at     timestamptz NOT NULL,
    topic           text NOT NULL,
    payload         bytea NOT NULL,
    reading_count   integer NOT NULL,
    digest          bytea NOT NULL,
    stored_digest   bytea,
    reason          text NOT NULL
);
CREATE INDEX batch_conflicts_device ON batch_conflicts (device_id, seq);
CREATE INDEX batch_conflicts_received_at ON batch_conflicts (received_at);
