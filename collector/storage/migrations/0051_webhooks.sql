-- Webhooks (issue 10): endpoints, an outbox of events, one delivery per (event, endpoint),
-- and a log of every attempt. Events are written in the transaction of what they announce:
-- by tally_webhook_emit() from Python (collector.webhooks) and from the invoice triggers below.

CREATE TABLE webhook_endpoints (
    endpoint_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    secret      text NOT NULL CHECK (secret LIKE 'whsec_%'),
    event_types text[],                 -- NULL: every event type
    customer_id bigint REFERENCES customers (customer_id),  -- set: only that customer's events
    description text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
    event_id    text PRIMARY KEY,       -- the webhook-id header: msg_<32 hex>
    event_type  text NOT NULL,
    customer_id bigint,
    payload     jsonb NOT NULL,         -- the body: {"type", "timestamp", "data"}
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text NOT NULL REFERENCES webhook_events (event_id),
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    attempt_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (delivery_id),
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  double precision NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

-- One event, fanned out to every active endpoint that wants it; nothing is stored when no
-- endpoint does. Returns the event id (NULL when nobody listens).
CREATE FUNCTION tally_webhook_emit(p_type text, p_customer bigint, p_data jsonb, p_at timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    eid text;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM webhook_endpoints e WHERE e.active
           AND (e.event_types IS NULL OR p_type = ANY (e.event_types))
           AND (e.customer_id IS NULL OR e.customer_id = p_customer)
    ) THEN
        RETURN NULL;
    END IF;
    eid := 'msg_' || replace(gen_random_uuid()::text, '-', '');
    INSERT INTO webhook_events (event_id, event_type, customer_id, payload, created_at)
    VALUES (eid, p_type, p_customer,
            jsonb_build_object('type', p_type,
                               'timestamp', to_char(p_at AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                               'data', p_data),
            p_at);
    INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at)
    SELECT eid, e.endpoint_id, p_at FROM webhook_endpoints e
     WHERE e.active AND (e.event_types IS NULL OR p_type = ANY (e.event_types))
       AND (e.customer_id IS NULL OR e.customer_id = p_customer);
    RETURN eid;
END $$;

-- Billing events from the invoices themselves, so every path that drafts, re-drafts or
-- finalizes an invoice announces it in its own transaction.
CREATE FUNCTION tally_invoice_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    data jsonb;
    c record;
BEGIN
    data := jsonb_build_object(
        'invoice_id', NEW.invoice_id, 'customer_id', NEW.customer_id, 'period', NEW.period,
        'status', NEW.status, 'number', NEW.number, 'currency', NEW.currency,
        'subtotal', NEW.subtotal::text, 'tax', NEW.tax::text, 'total', NEW.total::text);
    IF TG_OP = 'INSERT' THEN
        PERFORM tally_webhook_emit('invoice.drafted', NEW.customer_id, data, now());
    ELSIF OLD.status = 'draft' AND NEW.status = 'final' THEN
        PERFORM tally_webhook_emit('invoice.finalized', NEW.customer_id, data, now());
        FOR c IN
            SELECT l.corrects_invoice_id AS id, ci.number, sum(l.amount) AS amount
              FROM invoice_lines l JOIN invoices ci ON ci.invoice_id = l.corrects_invoice_id
             WHERE l.invoice_id = NEW.invoice_id AND l.corrects_invoice_id IS NOT NULL
             GROUP BY 1, 2
        LOOP
            PERFORM tally_webhook_emit('invoice.corrected', NEW.customer_id,
                jsonb_build_object('invoice_id', c.id, 'number', c.number,
                                   'corrected_by_invoice_id', NEW.invoice_id,
                                   'corrected_by_number', NEW.number,
                                   'amount', c.amount::text, 'currency', NEW.currency),
                now());
        END LOOP;
    ELSIF NEW.status = 'draft' AND (OLD.total IS DISTINCT FROM NEW.total) THEN
        PERFORM tally_webhook_emit('invoice.drafted', NEW.customer_id,
                                   data || jsonb_build_object('redrafted', true), now());
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER invoices_webhook_events
    AFTER INSERT OR UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION tally_invoice_events();

-- Devices reported offline, so each silence is announced once.
CREATE TABLE webhook_device_offline (
    device_id text PRIMARY KEY,
    last_seen timestamptz NOT NULL,
    notified_at timestamptz NOT NULL
);
