/* @invariant
code = "I10"
name = "reconciliation_at_risk_by_verdict_equal_refund_verdicts"
reads = ["daily_reconciliation", "refund_verdicts"]
*/
-- daily_reconciliation's verdicts and money at risk add up to refund_verdicts: per currency,
-- the refunds per verdict (compliant, breach, stop, rejected) and the money at risk of breach
-- and stop refunds summed over its days and products equal the same figures in
-- refund_verdicts, where compliant and rejected refunds carry no money at risk.
WITH judged AS (
    SELECT currency,
           'compliant ' || count(*) FILTER (WHERE verdict = 'compliant') || '/'
               || coalesce(sum(amount_at_risk) FILTER (WHERE verdict = 'compliant'), 0)::DECIMAL(38,2)
           || ', breach ' || count(*) FILTER (WHERE verdict = 'breach') || '/'
               || coalesce(sum(amount_at_risk) FILTER (WHERE verdict = 'breach'), 0)::DECIMAL(38,2)
           || ', stop ' || count(*) FILTER (WHERE verdict = 'stop') || '/'
               || coalesce(sum(amount_at_risk) FILTER (WHERE verdict = 'stop'), 0)::DECIMAL(38,2)
           || ', rejected ' || count(*) FILTER (WHERE verdict = 'rejected') || '/'
               || coalesce(sum(amount_at_risk) FILTER (WHERE verdict = 'rejected'), 0)::DECIMAL(38,2)
           || ', other ' || count(*) FILTER (WHERE verdict NOT IN ('compliant', 'breach', 'stop', 'rejected')
                                                 OR verdict IS NULL)
           || ', total at risk ' || sum(amount_at_risk) AS text
    FROM refund_verdicts
    GROUP BY currency
),
reconciled AS (
    SELECT currency,
           'compliant ' || sum(verdict_compliant_count) || '/0.00'
           || ', breach ' || sum(verdict_breach_count) || '/' || sum(at_risk_breach)
           || ', stop ' || sum(verdict_stop_count) || '/' || sum(at_risk_stop)
           || ', rejected ' || sum(verdict_rejected_count) || '/0.00'
           || ', other 0'
           || ', total at risk ' || sum(at_risk_total) AS text
    FROM daily_reconciliation
    GROUP BY currency
    HAVING sum(verdict_compliant_count + verdict_breach_count + verdict_stop_count + verdict_rejected_count) > 0
        OR sum(at_risk_total) <> 0
),
compared AS (
    SELECT currency, judged.text AS expected, reconciled.text AS actual
    FROM judged
    FULL OUTER JOIN reconciled USING (currency)
)
SELECT unnest(currency_tie_out(list({'currency': currency, 'expected': expected, 'actual': actual} ORDER BY currency),
                               'refunds and money at risk per verdict (count/amount)'))
FROM compared;
