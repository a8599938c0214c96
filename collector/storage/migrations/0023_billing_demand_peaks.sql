-- Billing (helper E/H): the actual (un-ratcheted) demand peak of each invoice, per subscription
-- and demand charge, in the charge's billed unit (e.g. kW). Written with every draft (replaced
-- on re-draft); the peaks of FINAL invoices of the previous months feed demand ratchets.
CREATE TABLE invoice_demand_peaks (
    invoice_id      bigint NOT NULL REFERENCES invoices (invoice_id),
    subscription_id bigint NOT NULL,
    customer_id     bigint NOT NULL,
    series_id       bigint NOT NULL,
    period          text NOT NULL,
    charge_id       text NOT NULL,
    peak            numeric NOT NULL CHECK (peak >= 0),
    PRIMARY KEY (invoice_id, subscription_id, charge_id)
);
CREATE INDEX invoice_demand_peaks_history
    ON invoice_demand_peaks (customer_id, series_id, charge_id, period);

-- Peaks of a final invoice are as immutable as its lines (same set-based check).
CREATE TRIGGER invoice_demand_peaks_final_immutable_ins
    AFTER INSERT ON invoice_demand_peaks REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_final_line_change();
CREATE TRIGGER invoice_demand_peaks_final_immutable_upd
    AFTER UPDATE ON invoice_demand_peaks
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_final_line_change();
CREATE TRIGGER invoice_demand_peaks_final_immutable_del
    AFTER DELETE ON invoice_demand_peaks REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION billing_reject_final_line_change();
