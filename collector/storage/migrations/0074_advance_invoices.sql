-- Pay-in-advance fees: recurring fees marked ``pay_in_advance`` are billed at the start of the
-- period on an invoice of their own, numbered in the normal gapless series, final at issue and
-- immutable; the period's final invoice leaves them off. One per (customer, period).
CREATE TABLE advance_invoices (
    advance_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (customer_id),
    period       text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    currency     char(3) NOT NULL,
    tax_rate     numeric NOT NULL,
    subtotal     numeric NOT NULL CHECK (subtotal > 0),
    tax          numeric NOT NULL,
    total        numeric NOT NULL,
    issuer       text NOT NULL,
    prefix       text NOT NULL,
    number       text NOT NULL UNIQUE,
    lines        jsonb NOT NULL,   -- [{subscription_id, charge_id, description, amount}]
    issued_at    timestamptz NOT NULL,
    UNIQUE (customer_id, period),
    CHECK (total = subtotal + tax)
);

CREATE FUNCTION advance_invoices_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'advance invoice % (%) is final and cannot be changed',
        OLD.advance_id, OLD.number USING ERRCODE = 'TL001';
END;
$$;
CREATE TRIGGER advance_invoices_immutable BEFORE UPDATE OR DELETE ON advance_invoices
    FOR EACH ROW EXECUTE FUNCTION advance_invoices_immutable();
