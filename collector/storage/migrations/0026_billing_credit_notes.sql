-- Billing: credit notes. A credit note corrects one final invoice (the amounts it credits are
-- positive), has its own gapless number series per (issuer, prefix, year), and is issued final:
-- it is never updated or deleted (triggers below). Its lines count as billed for the invoice
-- they correct, so a correction is never credited twice.
CREATE TABLE credit_note_sequences (
    issuer     text NOT NULL,
    prefix     text NOT NULL,
    year       integer NOT NULL,
    last_value bigint NOT NULL CHECK (last_value >= 0),
    PRIMARY KEY (issuer, prefix, year)
);

CREATE TABLE credit_notes (
    credit_note_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number              text NOT NULL UNIQUE,
    customer_id         bigint NOT NULL REFERENCES customers (customer_id),
    corrects_invoice_id bigint NOT NULL REFERENCES invoices (invoice_id),
    reason              text NOT NULL CHECK (reason <> ''),
    currency            char(3) NOT NULL,
    tax_rate            numeric NOT NULL,
    subtotal            numeric NOT NULL,
    subtotal_unrounded  numeric NOT NULL,
    tax                 numeric NOT NULL,
    total               numeric NOT NULL,
    issuer              text NOT NULL,
    prefix              text NOT NULL,
    customer_snapshot   jsonb NOT NULL,
    issuer_snapshot     jsonb,
    issued_at           timestamptz NOT NULL
);
CREATE INDEX credit_notes_invoice ON credit_notes (corrects_invoice_id);
CREATE INDEX credit_notes_customer ON credit_notes (customer_id, issued_at);

CREATE TABLE credit_note_lines (
    credit_note_id   bigint NOT NULL REFERENCES credit_notes (credit_note_id),
    line_no          integer NOT NULL,
    description      text NOT NULL,
    quantity         numeric NOT NULL,
    unit             text NOT NULL,
    unit_price       numeric NOT NULL,
    amount_unrounded numeric NOT NULL,
    amount           numeric NOT NULL,
    subscription_id  bigint REFERENCES subscriptions (subscription_id),
    lineage          jsonb NOT NULL,
    PRIMARY KEY (credit_note_id, line_no)
);
CREATE INDEX credit_note_lines_subscription ON credit_note_lines (subscription_id);

CREATE FUNCTION billing_reject_credit_note_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit notes are issued final and cannot be changed' USING ERRCODE = 'TL001';
END $$;
CREATE TRIGGER credit_notes_immutable BEFORE UPDATE OR DELETE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION billing_reject_credit_note_change();
CREATE TRIGGER credit_note_lines_immutable BEFORE UPDATE OR DELETE ON credit_note_lines
    FOR EACH ROW EXECUTE FUNCTION billing_reject_credit_note_change();
CREATE TRIGGER credit_notes_no_truncate BEFORE TRUNCATE ON credit_notes
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_truncate();
CREATE TRIGGER credit_note_lines_no_truncate BEFORE TRUNCATE ON credit_note_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_truncate();
