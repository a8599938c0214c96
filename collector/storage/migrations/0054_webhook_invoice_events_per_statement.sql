-- Invoice webhook events per statement instead of per row. A close or finalize writes the
-- invoices of a chunk (1,000 customers) in one statement; the row trigger of 0051 made one
-- PL/pgSQL call per invoice and row, even when no endpoint listens (then tally_webhook_emit
-- stores nothing), which was a large share of a month close. The same events, in the same
-- transaction and in invoice order, are now emitted from the statement's transition tables,
-- and a statement costs one lookup of the endpoints when nobody listens.
DROP TRIGGER invoices_webhook_events ON invoices;
DROP FUNCTION tally_invoice_events();

CREATE FUNCTION tally_invoice_events_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE active) THEN
        RETURN NULL;
    END IF;
    FOR r IN
        SELECT n.customer_id, jsonb_build_object(
                   'invoice_id', n.invoice_id, 'customer_id', n.customer_id,
                   'period', n.period, 'status', n.status, 'number', n.number,
                   'currency', n.currency, 'subtotal', n.subtotal::text, 'tax', n.tax::text,
                   'total', n.total::text) AS data
          FROM inserted_rows n ORDER BY n.invoice_id
    LOOP
        PERFORM tally_webhook_emit('invoice.drafted', r.customer_id, r.data, now());
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION tally_invoice_events_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    c record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE active) THEN
        RETURN NULL;
    END IF;
    FOR r IN
        SELECT n.invoice_id, n.customer_id, n.status, n.number, n.currency, n.total,
               o.status AS old_status, o.total AS old_total, jsonb_build_object(
                   'invoice_id', n.invoice_id, 'customer_id', n.customer_id,
                   'period', n.period, 'status', n.status, 'number', n.number,
                   'currency', n.currency, 'subtotal', n.subtotal::text, 'tax', n.tax::text,
                   'total', n.total::text) AS data
          FROM updated_new n JOIN updated_old o ON o.invoice_id = n.invoice_id
         ORDER BY n.invoice_id
    LOOP
        IF r.old_status = 'draft' AND r.status = 'final' THEN
            PERFORM tally_webhook_emit('invoice.finalized', r.customer_id, r.data, now());
            FOR c IN
                SELECT l.corrects_invoice_id AS id, ci.number, sum(l.amount) AS amount
                  FROM invoice_lines l JOIN invoices ci ON ci.invoice_id = l.corrects_invoice_id
                 WHERE l.invoice_id = r.invoice_id AND l.corrects_invoice_id IS NOT NULL
                 GROUP BY 1, 2
            LOOP
                PERFORM tally_webhook_emit('invoice.corrected', r.customer_id,
                    jsonb_build_object('invoice_id', c.id, 'number', c.number,
                                       'corrected_by_invoice_id', r.invoice_id,
                                       'corrected_by_number', r.number,
                                       'amount', c.amount::text, 'currency', r.currency),
                    now());
            END LOOP;
        ELSIF r.status = 'draft' AND (r.old_total IS DISTINCT FROM r.total) THEN
            PERFORM tally_webhook_emit('invoice.drafted', r.customer_id,
                                       r.data || jsonb_build_object('redrafted', true), now());
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER invoices_webhook_events_inserted
    AFTER INSERT ON invoices REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_invoice_events_inserted();
CREATE TRIGGER invoices_webhook_events_updated
    AFTER UPDATE ON invoices REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new
    FOR EACH STATEMENT EXECUTE FUNCTION tally_invoice_events_updated();
