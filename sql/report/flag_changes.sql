/* @step
creates = ["report_flag_changes"]
reads = ["refund_flags_history", "refund_verdicts_history", "report_nights"]
params = ["run_id"]
*/
-- The flags of tonight and of the night before (the previous of report_nights), each with its
-- refund's verdict on its own night: `new` (tonight only), `resolved` (the night before only)
-- or `kept` (both). A resolved flag also carries its refund as the run sees it (`now_*`; NULL
-- when the refund is not visible tonight). Largest money at risk first.
CREATE OR REPLACE TEMP VIEW report_flag_changes AS
WITH previous AS (
    SELECT run_id FROM report_nights WHERE run_id <> getvariable('run_id') ORDER BY as_of DESC LIMIT 1
),
flags AS (
    SELECT flag.*, verdict.currency, verdict.verdict, verdict.refund_amount,
           flag.run_id = getvariable('run_id') AS tonight
    FROM refund_flags_history AS flag
    LEFT JOIN refund_verdicts_history AS verdict USING (run_id, refund_id)
    WHERE flag.run_id = getvariable('run_id') OR flag.run_id IN (SELECT run_id FROM previous)
),
keyed AS (
    SELECT *, count(*) OVER (PARTITION BY refund_id, rule_code) = 2 AS on_both FROM flags
)
SELECT CASE WHEN keyed.on_both THEN 'kept' WHEN keyed.tonight THEN 'new' ELSE 'resolved' END AS change,
       keyed.* EXCLUDE (tonight, on_both),
       now.refund_id IS NOT NULL AS now_visible, now.verdict AS now_verdict,
       now.refund_status AS now_refund_status, now.rule_codes AS now_rule_codes
FROM keyed
LEFT JOIN refund_verdicts_history AS now
    ON NOT keyed.tonight AND now.run_id = getvariable('run_id') AND now.refund_id = keyed.refund_id
WHERE keyed.tonight OR NOT keyed.on_both
ORDER BY keyed.amount_at_risk DESC, keyed.refund_id, keyed.rule_code;
