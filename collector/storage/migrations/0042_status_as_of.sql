-- The time a device status was true, from the status document's own timestamp (never later
-- than its arrival): a redelivered retained status never looks fresher than it is.
ALTER TABLE device_status ADD COLUMN as_of timestamptz;
UPDATE device_status SET as_of = CASE
    WHEN jsonb_typeof(payload -> 'ts') = 'number' THEN CASE
        WHEN (payload ->> 'ts')::numeric BETWEEN 946684800000 AND 32503680000000
        THEN least(received_at, to_timestamp((payload ->> 'ts')::double precision / 1000))
        ELSE received_at END
    ELSE received_at END;
ALTER TABLE device_status ALTER COLUMN as_of SET NOT NULL;

-- Writers that do not know the column get their arrival time.
CREATE FUNCTION device_status_as_of() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.as_of := coalesce(NEW.as_of, NEW.received_at);
    RETURN NEW;
END $$;
CREATE TRIGGER device_status_as_of BEFORE INSERT OR UPDATE ON device_status
    FOR EACH ROW EXECUTE FUNCTION device_status_as_of();
