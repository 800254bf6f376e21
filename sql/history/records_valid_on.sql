/* @step
creates = ["purchases", "usage", "refunds", "account_status", "records_valid_on", "latest_as_of"]
reads = ["runs"]
*/
-- The records of any night, from the versioned record tables (jobs/stages/history.py): the version
-- of each key valid on `day`, the as_of of a night, unless that version is a delivery that was
-- quarantined (a record withheld that night). Analysts can ask for any earlier night:
--   SELECT * FROM records_valid_on('refunds_versions', DATE '2026-03-01');
CREATE OR REPLACE MACRO records_valid_on(versions, day) AS TABLE
SELECT * EXCLUDE (_valid_to, _quarantined)
FROM query_table(versions)
WHERE _valid_from <= day AND (_valid_to IS NULL OR _valid_to > day) AND NOT _quarantined;

-- The as_of of the latest run: `purchases`, `usage`, `refunds` and `account_status` are the
-- records that run judged (SPEC 6: each table holds the latest run's view).
CREATE OR REPLACE MACRO latest_as_of() AS (SELECT arg_max(as_of, finished_at) FROM runs);

CREATE OR REPLACE VIEW purchases AS FROM records_valid_on('purchases_versions', latest_as_of());
CREATE OR REPLACE VIEW usage AS FROM records_valid_on('usage_versions', latest_as_of());
CREATE OR REPLACE VIEW refunds AS FROM records_valid_on('refunds_versions', latest_as_of())
WHERE order_id IN (SELECT order_id FROM purchases);  -- a refund is judged with its order
CREATE OR REPLACE VIEW account_status AS FROM records_valid_on('account_status_versions', latest_as_of());
