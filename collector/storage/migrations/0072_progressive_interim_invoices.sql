-- Progressive billing: interim invoices issued when a subscription's usage amount crosses a
-- plan threshold inside an open period. Numbered in the normal gapless series
-- (invoice_number_sequences), final at issue and immutable; the period's final invoice deducts
-- the sum of ``amount`` per (subscription, period). One interim invoice per threshold.
CREATE TABLE interim_invoices (
    interim_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id        bigint NOT NULL REFERENCES customers (customer_id),
    subscription_id    bigint NOT NULL REFERENCES subscriptions (subscription_id),
    period             text NOT NULL,
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    threshold          numeric NOT NULL CHECK (threshold > 0),
    usage_amount       numeric NOT NULL CHECK (usage_amount >= threshold),
    billed_before      numeric NOT NULL CHECK (billed_before >= 0),
    amount             numeric NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL,
    tax_rate           numeric NOT NULL,
    tax                numeric NOT NULL,
    total              numeric NOT NULL,
    issuer             text NOT NULL,
    prefix             text NOT NULL,
    number             text NOT NULL UNIQUE,
    description        text NOT NULL,
    issued_at          timestamptz NOT NULL,
    UNIQUE (subscription_id, period, threshold),
    CHECK (amount = usage_amount - billed_before),
    CHECK (total = amount + tax)
);
CREATE INDEX interim_invoices_customer ON interim_invoices (customer_id, period);

CREATE FUNCTION interim_invoices_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'interim invoice % (%) is final and cannot be changed',
        OLD.interim_id, OLD.number USING ERRCODE = 'TL001';
END;
$$;
CREATE TRIGGER interim_invoices_immutable BEFORE UPDATE OR DELETE ON interim_invoices
    FOR EACH ROW EXECUTE FUNCTION interim_invoices_immutable();
