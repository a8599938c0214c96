-- Billing (helper E): customer portal access tokens. Only a SHA-256 of each token is stored;
-- the token itself is shown once when staff create it.
CREATE TABLE portal_tokens (
    token_sha256 bytea PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (customer_id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX portal_tokens_customer ON portal_tokens (customer_id);
