-- Staff API keys with roles, and the audit trail of state-changing calls (docs/security.md).
-- Only SHA-256 of each key is stored; the key itself is shown once when it is created.
CREATE TABLE staff_keys (
    key_id     text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    key_sha256 bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin', 'billing', 'technician', 'read_only')),
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    role    text,
    method  text NOT NULL,
    path    text NOT NULL,
    status  integer NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('ok', 'refused', 'rejected', 'failed')),
    client  text,
    target  text
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);
