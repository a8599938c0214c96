-- Device identity: one-time enrollment codes (digests only) and registered devices.

CREATE TABLE device_enrollments (
    enrollment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_digest   text NOT NULL UNIQUE,          -- SHA-256 of the normalised code
    customer_id   text NOT NULL,
    site          text NOT NULL,
    meters        jsonb NOT NULL,                -- the agent's [[sources]] entries
    purpose       text NOT NULL CHECK (purpose IN ('new', 'reenroll', 'replace')),
    target_device text,                          -- reenroll: this device; replace: the old one
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    redeemed_at   timestamptz,
    device_id     text,
    secret_digest text,
    CHECK (expires_at > created_at)
);

CREATE TABLE devices (
    device_id         text PRIMARY KEY,
    customer_id       text NOT NULL,
    site              text NOT NULL,
    state             text NOT NULL CHECK (state IN ('active', 'decommissioned')),
    meters            jsonb NOT NULL,
    config_version    integer NOT NULL DEFAULT 1,
    installation      text NOT NULL DEFAULT '',
    enrolled_at       timestamptz NOT NULL,
    decommissioned_at timestamptz,
    replaced_by       text REFERENCES devices (device_id)
);
CREATE INDEX devices_customer ON devices (customer_id);
