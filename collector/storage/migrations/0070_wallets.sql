-- Prepaid credits (wallets): one wallet per customer, top-ups with optional expiry, and uses
-- (credits taken out of a top-up by a final invoice or by expiry). Money is numeric.
-- The consumption order is decided by collector/wallets/ledger.py.

CREATE TABLE wallets (
    wallet_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL UNIQUE REFERENCES customers (customer_id),
    currency    char(3) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wallet_top_ups (
    top_up_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet_id  bigint NOT NULL REFERENCES wallets (wallet_id),
    credits    numeric NOT NULL CHECK (credits > 0),
    granted_at timestamptz NOT NULL,
    expires_at timestamptz CHECK (expires_at IS NULL OR expires_at > granted_at),
    note       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_top_ups_wallet ON wallet_top_ups (wallet_id, top_up_id);

-- One application of a wallet to one final invoice (never twice).
CREATE TABLE wallet_applications (
    invoice_id bigint PRIMARY KEY REFERENCES invoices (invoice_id),
    wallet_id  bigint NOT NULL REFERENCES wallets (wallet_id),
    amount     numeric NOT NULL CHECK (amount >= 0),
    applied_at timestamptz NOT NULL
);

CREATE TABLE wallet_uses (
    use_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    top_up_id  bigint NOT NULL REFERENCES wallet_top_ups (top_up_id),
    kind       text NOT NULL CHECK (kind IN ('invoice', 'expiry')),
    invoice_id bigint REFERENCES wallet_applications (invoice_id),
    amount     numeric NOT NULL CHECK (amount > 0),
    at         timestamptz NOT NULL,
    CHECK ((kind = 'invoice') = (invoice_id IS NOT NULL))
);
CREATE INDEX wallet_uses_top_up ON wallet_uses (top_up_id);
