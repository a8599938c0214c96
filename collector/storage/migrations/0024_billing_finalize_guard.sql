-- Billing: the finalize guard. An invoice finalized before its period end + grace window (only
-- possible when staff force it) keeps the reason they gave; NULL for a normal finalization.
-- Set in the same UPDATE that makes the invoice final, so it is immutable like the rest.
ALTER TABLE invoices ADD COLUMN forced_reason text
    CHECK (forced_reason IS NULL OR (forced_reason <> '' AND status = 'final'));
