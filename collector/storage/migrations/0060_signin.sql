-- Browser sign-in (portal and staff console): one-time sign-in codes and server-side
-- sessions. Only SHA-256 digests of codes and session ids are stored.
CREATE TABLE signin_codes (
    code_sha256 bytea PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (customer_id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX signin_codes_customer ON signin_codes (customer_id);
CREATE INDEX signin_codes_expires ON signin_codes (expires_at);

CREATE TABLE web_sessions (
    session_sha256 bytea PRIMARY KEY,
    audience       text NOT NULL CHECK (audience IN ('portal', 'console')),
    customer_id    bigint REFERENCES customers (customer_id),
    staff          text,
    csrf_token     text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    CHECK ((audience = 'portal') = (customer_id IS NOT NULL)),
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_customer ON web_sessions (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
