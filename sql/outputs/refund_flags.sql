/* @step
creates = ["refund_flags"]
reads = ["refund_facts", "rule_catalog", "rule_hits"]
params = ["as_of", "run_id"]
*/
-- refund_flags (SPEC 6): one row per refund and reason code that fired.
CREATE OR REPLACE TABLE refund_flags AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       refund.refund_id,
       refund.order_id,
       refund.account_id,
       refund.entity_id,
       hit.rule_code,
       rule.category,
       rule.severity,
       refund.refund_status,
       hit.amount_at_risk,
       hit.evidence
FROM rule_hits AS hit
JOIN refund_facts AS refund USING (refund_id)
JOIN rule_catalog AS rule USING (rule_code)
ORDER BY refund.refund_id, rule.position;
