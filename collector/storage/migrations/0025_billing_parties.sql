-- Billing: invoices as legal documents. Issuers (the sellers: legal name, address, VAT id,
-- IBAN, payment terms, Peppol endpoint), validated by collector.billing.parties.Issuer and
-- stored as one document per issuer code (customers.issuer names it). Customers get their VAT
-- facts (business, VAT id, VAT category, exemption reason, Peppol endpoint, buyer reference).
-- Each invoice keeps a snapshot of its issuer: taken when drafted, taken again when finalized
-- (the issue date), immutable afterwards like the rest of a final invoice.
CREATE TABLE issuers (
    code       text PRIMARY KEY CHECK (code <> ''),
    document   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE customers ADD COLUMN tax jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE invoices ADD COLUMN issuer_snapshot jsonb;
