/* @step
creates = ["daily_reconciliation_by_rule"]
reads = ["refund_facts", "refund_flags", "rule_catalog"]
params = ["as_of", "run_id"]
*/
-- daily_reconciliation_by_rule: money at risk per rule, one row per (billing_day, product,
-- currency, rule_code) of the catalogue that flagged a refund requested that day (SPEC 4:
-- "Money at risk for one flag"). Refunds count on their request day under the order's product
-- and currency, as in daily_reconciliation; a new rule appears here with no change to this file.
CREATE OR REPLACE TABLE daily_reconciliation_by_rule AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       refund.request_day AS billing_day,
       refund.product,
       refund.currency,
       flag.rule_code,
       count(*) AS flags_count,
       sum(flag.amount_at_risk)::DECIMAL(38,2) AS amount_at_risk
FROM refund_flags AS flag
JOIN refund_facts AS refund USING (refund_id)
JOIN rule_catalog AS rule USING (rule_code)
GROUP BY ALL
ORDER BY billing_day, product, currency, any_value(rule.position);
