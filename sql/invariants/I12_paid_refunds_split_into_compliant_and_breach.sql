/* @invariant
code = "I12"
name = "paid_refunds_split_into_compliant_and_breach"
reads = ["daily_reconciliation"]
*/
-- On every row of daily_reconciliation the refunds paid (as the run sees their status) split
-- exactly into those paid compliant and those paid in breach, in count and in amount: a paid
-- refund has no other verdict, so paid = paid compliant + paid in breach.
WITH broken AS (
    SELECT *
    FROM daily_reconciliation
    WHERE refunds_paid_count IS DISTINCT FROM refunds_paid_compliant_count + refunds_paid_in_breach_count
       OR refunds_paid_amount IS DISTINCT FROM refunds_paid_compliant_amount + refunds_paid_in_breach_amount
)
SELECT count(*) = 0 AS passed,
       (SELECT sum(refunds_paid_count) || '/' || sum(refunds_paid_amount) FROM daily_reconciliation)
           || ' paid (count/amount, all currencies)' AS expected,
       (SELECT sum(refunds_paid_compliant_count + refunds_paid_in_breach_count) || '/'
               || sum(refunds_paid_compliant_amount + refunds_paid_in_breach_amount) FROM daily_reconciliation)
           || ' paid compliant + paid in breach' AS actual,
       coalesce(string_agg(billing_day || ' ' || product || ' ' || currency || ': paid ' || refunds_paid_count
                           || '/' || refunds_paid_amount || ' <> compliant ' || refunds_paid_compliant_count
                           || '/' || refunds_paid_compliant_amount || ' + breach ' || refunds_paid_in_breach_count
                           || '/' || refunds_paid_in_breach_amount, '; ' ORDER BY billing_day, product, currency),
                'paid = paid compliant + paid in breach on every row') AS detail
FROM broken;
