/* @step
creates = ["money_at_risk_by_rule_month"]
reads = ["refund_flags", "refunds", "rule_catalog", "runs"]
*/
-- money_at_risk_by_rule_month: the latest run's flags summed per billing month in which the
-- refund was requested, reason code and currency (money is never added across currencies).
-- A refund flagged by several codes counts under each; amount_at_risk is each flag's own
-- (SPEC 4), so the rows of one month do not add up to the refunds' money at risk (see
-- refund_verdicts for that). Paid refunds are money to recover, pending ones to stop.
CREATE OR REPLACE VIEW money_at_risk_by_rule_month AS
WITH latest_run AS (
    SELECT billing_time_zone FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1
)
SELECT CAST(date_trunc('month', timezone((SELECT billing_time_zone FROM latest_run), refund.requested_at)) AS DATE)
           AS request_month,
       flag.rule_code,
       rule.category,
       rule.severity,
       refund.currency,
       count(*) AS flag_count,
       count(DISTINCT flag.refund_id) AS refund_count,
       sum(flag.amount_at_risk)::DECIMAL(38,2) AS amount_at_risk,
       coalesce(sum(flag.amount_at_risk) FILTER (WHERE flag.refund_status = 'paid'), 0)::DECIMAL(38,2)
           AS amount_at_risk_paid,
       coalesce(sum(flag.amount_at_risk) FILTER (WHERE flag.refund_status = 'pending'), 0)::DECIMAL(38,2)
           AS amount_at_risk_pending,
       coalesce(sum(flag.amount_at_risk) FILTER (WHERE flag.refund_status = 'rejected'), 0)::DECIMAL(38,2)
           AS amount_at_risk_rejected
FROM refund_flags AS flag
JOIN refunds AS refund USING (refund_id)
JOIN rule_catalog AS rule USING (rule_code)
GROUP BY request_month, flag.rule_code, rule.position, rule.category, rule.severity, refund.currency
ORDER BY request_month, rule.position, refund.currency;
