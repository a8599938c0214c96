-- Batch seqs an agent dropped before the collector confirmed them (drop_oldest on a full
-- buffer), as the agent reported them: a deliberate skip, never listed as a gap.
CREATE TABLE batch_skips (
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq)
);
