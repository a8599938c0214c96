-- The kind of a cumulative meter decides an ambiguous decrease (a drop followed by a rise past
-- the old value within glitch_window readings): a utility 'register' takes it as a glitch, a
-- 'software' counter as a reset. Either way the bucket is flagged AMBIGUOUS_DECREASE.
ALTER TABLE meter_config
    ADD COLUMN counter_kind text NOT NULL DEFAULT 'register'
    CHECK (counter_kind IN ('register', 'software'));
