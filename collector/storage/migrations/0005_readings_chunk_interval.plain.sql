-- readings on plain PostgreSQL: nothing to change, partitions stay one UTC month each (0002).
-- This step exists so that both flavours record the same schema versions.
SELECT 1;
