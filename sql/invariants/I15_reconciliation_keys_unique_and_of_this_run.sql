/* @invariant
code = "I15"
name = "reconciliation_keys_unique_and_of_this_run"
reads = ["daily_reconciliation"]
params = ["as_of", "run_id"]
*/
-- daily_reconciliation has one row per (billing_day, product, currency), no key is missing a
-- part, and every row belongs to this run (run_id and as_of), so sums over it count nothing
-- twice and nothing from another night.
WITH keyed AS (
    SELECT billing_day, product, currency, count(*) AS rows_with_key,
           count(*) FILTER (WHERE run_id IS DISTINCT FROM getvariable('run_id')
                               OR as_of IS DISTINCT FROM getvariable('as_of')) AS foreign_rows
    FROM daily_reconciliation
    GROUP BY ALL
),
broken AS (
    SELECT *,
           CASE WHEN billing_day IS NULL OR product IS NULL OR currency IS NULL THEN 'incomplete key'
                WHEN rows_with_key > 1 THEN rows_with_key || ' rows'
                ELSE foreign_rows || ' rows of another run' END AS problem
    FROM keyed
    WHERE billing_day IS NULL OR product IS NULL OR currency IS NULL OR rows_with_key > 1 OR foreign_rows > 0
)
SELECT count(*) = 0 AS passed,
       (SELECT count(*) FROM daily_reconciliation) || ' rows, one per key' AS expected,
       (SELECT count(*) FROM (SELECT DISTINCT billing_day, product, currency FROM daily_reconciliation))
           || ' distinct keys' AS actual,
       coalesce(string_agg(coalesce(CAST(billing_day AS VARCHAR), 'NULL') || ' ' || coalesce(product, 'NULL') || ' '
                           || coalesce(currency, 'NULL') || ': ' || problem, '; '),
                'one row per billing day, product and currency, all of this run') AS detail
FROM broken;
