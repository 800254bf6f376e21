/* @invariant
code = "I09"
name = "reconciliation_refunds_equal_refunds_export"
reads = ["daily_reconciliation", "refunds"]
params = ["as_of_end"]
*/
-- daily_reconciliation's refund figures add up to the loaded refunds export: per currency, the
-- refunds requested, paid, rejected and pending (count and amount) summed over its days and
-- products equal the same figures counted straight from the export, with the status the run
-- sees (SPEC 3: paid or rejected after the end of as_of is still pending tonight).
WITH seen AS (
    SELECT currency,
           refund_amount,
           CASE WHEN status <> 'pending' AND processed_at >= getvariable('as_of_end') THEN 'pending'
                ELSE status END AS status
    FROM refunds
),
exported AS (
    SELECT currency,
           'requested ' || count(*) || '/' || sum(refund_amount)
           || ', paid ' || count(*) FILTER (WHERE status = 'paid') || '/'
               || coalesce(sum(refund_amount) FILTER (WHERE status = 'paid'), 0)::DECIMAL(38,2)
           || ', rejected ' || count(*) FILTER (WHERE status = 'rejected') || '/'
               || coalesce(sum(refund_amount) FILTER (WHERE status = 'rejected'), 0)::DECIMAL(38,2)
           || ', pending ' || count(*) FILTER (WHERE status = 'pending') || '/'
               || coalesce(sum(refund_amount) FILTER (WHERE status = 'pending'), 0)::DECIMAL(38,2) AS text
    FROM seen
    GROUP BY currency
),
reconciled AS (
    SELECT currency,
           'requested ' || sum(refunds_requested_count) || '/' || sum(refunds_requested_amount)
           || ', paid ' || sum(refunds_paid_count) || '/' || sum(refunds_paid_amount)
           || ', rejected ' || sum(refunds_rejected_count) || '/' || sum(refunds_rejected_amount)
           || ', pending ' || sum(refunds_pending_count) || '/' || sum(refunds_pending_amount) AS text
    FROM daily_reconciliation
    GROUP BY currency
    HAVING sum(refunds_requested_count) > 0 OR sum(refunds_requested_amount) <> 0
        OR sum(refunds_paid_count + refunds_rejected_count + refunds_pending_count) > 0
),
compared AS (
    SELECT currency, exported.text AS expected, reconciled.text AS actual
    FROM exported
    FULL OUTER JOIN reconciled USING (currency)
)
SELECT unnest(currency_tie_out(list({'currency': currency, 'expected': expected, 'actual': actual} ORDER BY currency),
                               'refund counts and amounts (count/amount)'))
FROM compared;
