-- Dead letters keep at most the first 64 KiB of a payload, with the whole payload's size and
-- SHA-256 (docs/security.md): a flood of huge bad messages cannot fill the database. The
-- collector sends the prefix, size and digest itself; the trigger holds every other writer
-- to the same rule.
ALTER TABLE dead_letters ADD COLUMN payload_size bigint;
ALTER TABLE dead_letters ADD COLUMN payload_sha256 bytea;

CREATE FUNCTION dead_letters_keep_prefix() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.payload_size := coalesce(NEW.payload_size, length(NEW.payload));
    NEW.payload_sha256 := coalesce(NEW.payload_sha256, sha256(NEW.payload));
    IF length(NEW.payload) > 65536 THEN
        NEW.payload := substring(NEW.payload FROM 1 FOR 65536);
    END IF;
    RETURN NEW;
END $$;

UPDATE dead_letters SET payload_size = length(payload), payload_sha256 = sha256(payload),
    payload = substring(payload FROM 1 FOR 65536);
ALTER TABLE dead_letters ALTER COLUMN payload_size SET NOT NULL;
ALTER TABLE dead_letters ALTER COLUMN payload_sha256 SET NOT NULL;

CREATE TRIGGER dead_letters_keep_prefix BEFORE INSERT OR UPDATE ON dead_letters
    FOR EACH ROW EXECUTE FUNCTION dead_letters_keep_prefix();
