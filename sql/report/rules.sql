/* @step
creates = ["report_rules", "report_rule_stats"]
reads = ["rule_catalog", "refund_flags_history", "refund_verdicts_history", "report_nights"]
*/
-- The rules in catalogue order.
CREATE OR REPLACE TEMP VIEW report_rules AS
SELECT * FROM rule_catalog ORDER BY position;

-- Per rule and currency of the refund: flags, refunds flagged and money at risk, tonight and
-- the night before (the two latest of report_nights).
CREATE OR REPLACE TEMP VIEW report_rule_stats AS
SELECT flag.run_id, flag.rule_code, coalesce(verdict.currency, '?') AS currency, count(*) AS flags,
       count(DISTINCT flag.refund_id) AS refunds, sum(flag.amount_at_risk) AS at_risk
FROM refund_flags_history AS flag
LEFT JOIN refund_verdicts_history AS verdict USING (run_id, refund_id)
WHERE flag.run_id IN (SELECT run_id FROM report_nights ORDER BY as_of DESC LIMIT 2)
GROUP BY ALL;
