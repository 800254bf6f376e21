/* @step
creates = ["refund_verdicts"]
reads = ["refund_facts", "rule_catalog", "rule_hits"]
params = ["as_of", "run_id"]
*/
-- refund_verdicts (SPEC 6): one row per visible refund.
--   verdict: paid or rejected with a flag -> breach; pending with a flag -> stop;
--            no flag -> compliant, or rejected for a rejected refund.
--   amount_at_risk: the refund_amount when a code that condemns the whole refund fired
--            (PAST_WINDOW, MINUTES_USED, CONCURRENT_REFUND, ACCOUNT_SUSPENDED,
--            DUPLICATE_REFUND), else the largest amount at risk of its flags, else 0.
CREATE OR REPLACE TABLE refund_verdicts AS
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       refund.refund_id,
       CASE WHEN count(hit.rule_code) = 0 AND refund.refund_status = 'rejected' THEN 'rejected'
            WHEN count(hit.rule_code) = 0 THEN 'compliant'
            WHEN refund.refund_status = 'pending' THEN 'stop'
            ELSE 'breach' END AS verdict,
       coalesce(list(hit.rule_code ORDER BY rule.position) FILTER (WHERE hit.rule_code IS NOT NULL),
                []::VARCHAR[]) AS rule_codes,
       CASE WHEN bool_or(rule.whole_refund_at_risk) THEN refund.refund_amount
            ELSE coalesce(max(hit.amount_at_risk), 0) END::DECIMAL(18,2) AS amount_at_risk,
       refund.order_id,
       refund.account_id,
       refund.entity_id,
       refund.refund_status,
       refund.refund_amount,
       refund.currency
FROM refund_facts AS refund
LEFT JOIN rule_hits AS hit USING (refund_id)
LEFT JOIN rule_catalog AS rule USING (rule_code)
GROUP BY refund.refund_id, refund.order_id, refund.account_id, refund.entity_id,
         refund.refund_status, refund.refund_amount, refund.currency
ORDER BY refund.refund_id;
