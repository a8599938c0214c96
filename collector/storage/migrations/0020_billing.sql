-- Billing schema (helper E): customers, plans with immutable versions, subscriptions of meters,
-- close runs, invoices (draft | final) with lines, gapless invoice numbering, idempotency keys.
-- Money is numeric (never float). All instants are timestamptz (UTC in practice).

CREATE TABLE customers (
    customer_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL CHECK (name <> ''),
    address        jsonb NOT NULL,
    currency       char(3) NOT NULL,
    time_zone      text NOT NULL,
    tax_rate       numeric NOT NULL CHECK (tax_rate >= 0 AND tax_rate < 1),
    language       text NOT NULL DEFAULT 'en',
    issuer         text NOT NULL DEFAULT 'default',
    invoice_prefix text NOT NULL DEFAULT 'INV',
    anchor_day     smallint NOT NULL DEFAULT 1 CHECK (anchor_day BETWEEN 1 AND 31),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_name ON customers (lower(name));

CREATE TABLE plans (
    plan_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       text NOT NULL UNIQUE CHECK (code <> ''),
    name       text NOT NULL,
    currency   char(3) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A price change is a new version; versions are never updated or deleted (trigger below).
CREATE TABLE plan_versions (
    plan_version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id         bigint NOT NULL REFERENCES plans (plan_id),
    version         integer NOT NULL CHECK (version >= 1),
    document        jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_id, version)
);

-- A meter (series) billed to a customer on a plan version during [valid_from, valid_to).
-- Move / plan change = end one row, start another at the same instant. Non-overlap per series is
-- enforced by the store under a per-series advisory lock (no btree_gist dependency).
CREATE TABLE subscriptions (
    subscription_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers (customer_id),
    series_id       bigint NOT NULL REFERENCES series (series_id),
    plan_version_id bigint NOT NULL REFERENCES plan_versions (plan_version_id),
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, valid_from);
CREATE INDEX subscriptions_series ON subscriptions (series_id, valid_from);

-- Progress of a close / refresh / finalize run; chunks commit together with their progress,
-- so a killed run resumes after the last committed customer.
CREATE TABLE billing_runs (
    run_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period           text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('close', 'refresh', 'finalize')),
    status           text NOT NULL CHECK (status IN ('running', 'done')),
    total_customers  integer NOT NULL DEFAULT 0,
    done_customers   integer NOT NULL DEFAULT 0,
    last_customer_id bigint NOT NULL DEFAULT 0,
    invoices_written integer NOT NULL DEFAULT 0,
    lines_written    integer NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
CREATE UNIQUE INDEX billing_runs_one_running ON billing_runs (period, kind) WHERE status = 'running';

CREATE TABLE invoices (
    invoice_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id        bigint NOT NULL REFERENCES customers (customer_id),
    period             text NOT NULL,
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    status             text NOT NULL CHECK (status IN ('draft', 'final')),
    currency           char(3) NOT NULL,
    tax_rate           numeric NOT NULL,
    subtotal           numeric NOT NULL,
    subtotal_unrounded numeric NOT NULL,
    tax                numeric NOT NULL,
    total              numeric NOT NULL,
    issuer             text NOT NULL,
    prefix             text NOT NULL,
    number             text UNIQUE,
    customer_snapshot  jsonb NOT NULL,
    drafted_at         timestamptz NOT NULL,
    finalized_at       timestamptz,
    run_id             bigint REFERENCES billing_runs (run_id),
    UNIQUE (customer_id, period),
    CHECK (period_end > period_start),
    CHECK ((status = 'final') = (number IS NOT NULL AND finalized_at IS NOT NULL))
);
CREATE INDEX invoices_period ON invoices (period, status);
CREATE INDEX invoices_finalized ON invoices (finalized_at) WHERE status = 'final';

CREATE TABLE invoice_lines (
    line_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id          bigint NOT NULL REFERENCES invoices (invoice_id),
    line_no             integer NOT NULL,
    kind                text NOT NULL
                        CHECK (kind IN ('usage', 'demand', 'fixed', 'adjustment', 'credit')),
    description         text NOT NULL,
    quantity            numeric NOT NULL,
    unit                text NOT NULL,
    unit_price          numeric,
    amount_unrounded    numeric NOT NULL,
    amount              numeric NOT NULL,
    tier                text,
    tou_period          text,
    estimated_share     numeric NOT NULL DEFAULT 0 CHECK (estimated_share BETWEEN 0 AND 1),
    subscription_id     bigint REFERENCES subscriptions (subscription_id),
    corrects_invoice_id bigint REFERENCES invoices (invoice_id),
    lineage             jsonb NOT NULL,
    UNIQUE (invoice_id, line_no)
);
CREATE INDEX invoice_lines_corrects ON invoice_lines (corrects_invoice_id)
    WHERE corrects_invoice_id IS NOT NULL;

-- Gapless numbering: one row per (issuer, prefix, year), incremented under its row lock in the
-- transaction that finalizes the invoice (a rollback gives the number back).
CREATE TABLE invoice_number_sequences (
    issuer     text NOT NULL,
    prefix     text NOT NULL,
    year       integer NOT NULL,
    last_value bigint NOT NULL CHECK (last_value >= 0),
    PRIMARY KEY (issuer, prefix, year)
);

CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status_code  integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Immutability, enforced by the database too -----------------------------------------------

CREATE FUNCTION billing_reject_final_invoice_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'final' THEN
        RAISE EXCEPTION 'invoice % (%) is final and cannot be changed', OLD.invoice_id, OLD.number
            USING ERRCODE = 'TL001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_final_immutable
    BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_reject_final_invoice_change();

-- Statement-level with transition tables: one set-based check per statement (COPY included).
CREATE FUNCTION billing_reject_final_line_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT i.invoice_id INTO bad FROM changed_new c JOIN invoices i USING (invoice_id)
         WHERE i.status = 'final' LIMIT 1;
    END IF;
    IF bad IS NULL AND TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT i.invoice_id INTO bad FROM changed_old c JOIN invoices i USING (invoice_id)
         WHERE i.status = 'final' LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'lines of final invoice % cannot be changed', bad USING ERRCODE = 'TL001';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER invoice_lines_final_immutable_ins
    AFTER INSERT ON invoice_lines REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_final_line_change();
CREATE TRIGGER invoice_lines_final_immutable_upd
    AFTER UPDATE ON invoice_lines REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_final_line_change();
CREATE TRIGGER invoice_lines_final_immutable_del
    AFTER DELETE ON invoice_lines REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_final_line_change();

CREATE FUNCTION billing_reject_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% cannot be truncated', TG_TABLE_NAME USING ERRCODE = 'TL001';
END $$;
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_truncate();
CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON invoice_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_truncate();

CREATE FUNCTION billing_reject_plan_version_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'plan version % is immutable; create a new version', OLD.plan_version_id
        USING ERRCODE = 'TL001';
END $$;
CREATE TRIGGER plan_versions_immutable
    BEFORE UPDATE OR DELETE ON plan_versions
    FOR EACH ROW EXECUTE FUNCTION billing_reject_plan_version_change();
