/* @invariant
code = "I13"
name = "recoverable_within_breach_payouts"
reads = ["daily_reconciliation"]
*/
-- Money recoverable is money that actually went out in breach: on every row of
-- daily_reconciliation, 0 <= amount_recoverable <= refunds paid in breach + refunds rejected
-- (amount), and the amount owed to customers is never negative.
WITH broken AS (
    SELECT *
    FROM daily_reconciliation
    WHERE NOT coalesce(amount_recoverable >= 0
                       AND amount_recoverable <= refunds_paid_in_breach_amount + refunds_rejected_amount
                       AND amount_owed_to_customers >= 0, false)
)
SELECT count(*) = 0 AS passed,
       '0 <= recoverable <= ' || (SELECT coalesce(sum(refunds_paid_in_breach_amount + refunds_rejected_amount), 0)
                                  FROM daily_reconciliation) || ' (paid in breach + rejected, all currencies)'
           AS expected,
       'recoverable ' || (SELECT coalesce(sum(amount_recoverable), 0) FROM daily_reconciliation)
           || ', owed ' || (SELECT coalesce(sum(amount_owed_to_customers), 0) FROM daily_reconciliation) AS actual,
       coalesce(string_agg(billing_day || ' ' || product || ' ' || currency || ': recoverable '
                           || coalesce(CAST(amount_recoverable AS VARCHAR), 'NULL') || ', paid in breach '
                           || refunds_paid_in_breach_amount || ', rejected ' || refunds_rejected_amount
                           || ', owed ' || coalesce(CAST(amount_owed_to_customers AS VARCHAR), 'NULL'),
                           '; ' ORDER BY billing_day, product, currency),
                'recoverable money never exceeds what went out in breach') AS detail
FROM broken;
