-- Month close at scale: every chunk of a close or finalize run looks up its customers' invoices
-- of one period by (period, status, customer_id = ANY(chunk)). With only (period, status) each
-- such lookup walked every draft (or final) invoice of the period, once per chunk, so a close
-- grew with the square of the number of customers. The new index answers them by probe and
-- serves every query the old one did (same leading columns).
CREATE INDEX invoices_period_status_customer ON invoices (period, status, customer_id);
DROP INDEX invoices_period;
