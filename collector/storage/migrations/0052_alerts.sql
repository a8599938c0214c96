-- Usage and spend alerts (issue 10): thresholds per customer and billing period, absolute or
-- a percentage of the previous period; an alert row is written once per (rule, customer,
-- period) crossing, together with its webhook event.

CREATE TABLE alert_rules (
    rule_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner       text NOT NULL CHECK (owner IN ('customer', 'staff')),
    customer_id bigint REFERENCES customers (customer_id),  -- NULL: every customer (staff)
    metric      text NOT NULL CHECK (metric IN ('quantity', 'amount')),
    unit        text,                                       -- quantity rules: the meters' unit
    threshold   numeric NOT NULL CHECK (threshold > 0),
    relative    boolean NOT NULL DEFAULT false,  -- threshold is a % of the previous period
    name        text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (owner = 'staff' OR customer_id IS NOT NULL),
    CHECK (metric = 'amount' OR unit IS NOT NULL)
);

CREATE TABLE alerts (
    alert_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id     bigint NOT NULL REFERENCES alert_rules (rule_id),
    customer_id bigint NOT NULL REFERENCES customers (customer_id),
    period      text NOT NULL,
    value       numeric NOT NULL,
    limit_value numeric NOT NULL,
    crossed_at  timestamptz NOT NULL,
    event_id    text,
    UNIQUE (rule_id, customer_id, period)
);
CREATE INDEX alerts_customer ON alerts (customer_id, crossed_at);
