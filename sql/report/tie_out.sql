/* @step
creates = ["report_invariants", "report_daily"]
reads = ["invariant_results_history", "daily_reconciliation_history"]
params = ["run_id"]
*/
-- The run's invariant checks, in the order they ran.
CREATE OR REPLACE TEMP VIEW report_invariants AS
SELECT invariant, name, description, passed, expected, actual, detail
FROM invariant_results_history WHERE run_id = getvariable('run_id')
ORDER BY position;

-- The finance tie-out summed per currency, for the billing day as_of and for every billing
-- day of the table (to as_of): one column per measure of daily_reconciliation (every column
-- but its keys, so the at_risk_<rule code> columns a new rule adds come along).
CREATE OR REPLACE TEMP VIEW report_daily AS
WITH night AS (
    SELECT * FROM daily_reconciliation_history WHERE run_id = getvariable('run_id')
),
scoped AS (
    SELECT 1 AS scope_order, 'billing day ' || CAST(as_of AS VARCHAR) AS scope, * FROM night WHERE billing_day = as_of
    UNION ALL
    SELECT 2, 'all billing days', * FROM night
)
SELECT scope, currency,
       sum(COLUMNS(* EXCLUDE (scope_order, scope, run_id, as_of, billing_day, product, currency)))
FROM scoped
GROUP BY scope_order, scope, currency
ORDER BY scope_order, currency;
