-- Least-privilege database role for the collector (docs/operations.md, "Database roles").
--
-- Migrations run as the schema's owner; the collector connects as a role that has only the
-- privileges tally_grant_collector() gives it. The one upkeep step that needs ownership on
-- plain PostgreSQL, creating and attaching readings partitions, runs inside
-- tally_ensure_reading_partitions(), which from here on runs with its owner's rights (SECURITY
-- DEFINER, fixed search_path) and is executable only by the roles granted. On TimescaleDB the
-- continuous aggregates can only be refreshed by their owner: the collector switches to the
-- owner role for that call alone (database.owner_role), which needs membership in it.

DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION tally_ensure_reading_partitions(timestamptz, integer)'
        ' SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END $$;

REVOKE EXECUTE ON FUNCTION tally_ensure_reading_partitions(timestamptz, integer) FROM PUBLIC;

CREATE FUNCTION tally_grant_collector(member regrole)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s text := current_schema();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %s', s, member);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %s',
                   s, member);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %s', s, member);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tally_ensure_reading_partitions(timestamptz,'
                   ' integer) TO %s', member);
    -- tables and sequences later migrations create (as this same owner) are granted too
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE'
                   ' ON TABLES TO %s', s, member);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE'
                   ' ON SEQUENCES TO %s', s, member);
END $$;

REVOKE EXECUTE ON FUNCTION tally_grant_collector(regrole) FROM PUBLIC;
