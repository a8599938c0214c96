-- Billing (helper E): find usage rows changed after a draft or a final invoice without scanning
-- the whole period (stale drafts, late data after finalize). usage_15m belongs to helper D's
-- 0010; this index is additive and only read by collector.storage.billing_usage_store.
CREATE INDEX usage_15m_updated_at ON usage_15m (updated_at);
