-- End-to-end acknowledgement: the seq up to which each device has been told, after commit,
-- that its batches are durable (an unbroken run from the lowest seq the agent still held).
ALTER TABLE device_ingest ADD COLUMN confirmed_seq bigint;
ALTER TABLE device_ingest ADD COLUMN confirmed_at timestamptz;
