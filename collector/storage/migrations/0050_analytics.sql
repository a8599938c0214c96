-- Usage analytics (issue 10): sites marked vacant, so usage during the vacancy is an anomaly.
-- A site is a device (all meters of one device_id). Open-ended vacancies have vacant_to NULL.

CREATE TABLE site_vacancies (
    vacancy_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL CHECK (device_id <> ''),
    vacant_from timestamptz NOT NULL,
    vacant_to   timestamptz,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (vacant_to IS NULL OR vacant_to > vacant_from)
);
CREATE INDEX site_vacancies_device ON site_vacancies (device_id, vacant_from);
