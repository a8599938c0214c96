-- readings: 30-day chunks instead of 1-day ones (0002). A compressed chunk stores each series
-- in batches of at most 1000 readings; a 1-day chunk gave a 15-minute meter batches of 96, and
-- TOAST pages packed those small batches poorly (14.2 bytes per reading compressed against
-- 10.8 with 30-day chunks, a month of 500 meters; docs/benchmarks.md, "TimescaleDB, measured").
-- New chunks only: chunks that already exist keep their 1-day span, compressed or not.
-- Compression settings (segment per series, ordered by ts) and the policy (chunks that ended
-- 7 days ago) stay as 0002 set them.
SELECT set_chunk_time_interval('readings', INTERVAL '30 days');
