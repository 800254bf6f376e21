/* @invariant
code = "I14"
name = "owed_equals_under_refund_shortfalls"
reads = ["daily_reconciliation", "purchases", "refund_flags", "refunds"]
*/
-- The amount owed to customers ties out to the exports: per currency, amount_owed_to_customers
-- summed over daily_reconciliation equals, over the refunds flagged UNDER_REFUNDED, what their
-- orders paid (cash + commission + free credits, from purchases) less what the refunds export
-- paid back (refund_amount).
WITH shortfalls AS (
    SELECT purchase.currency,
           count(*) AS refunds,
           sum(purchase.paid_cash_credit + purchase.paid_commission_credit + purchase.paid_free_credit
               - refund.refund_amount) AS owed
    FROM (SELECT DISTINCT refund_id FROM refund_flags WHERE rule_code = 'UNDER_REFUNDED') AS flagged
    JOIN refunds AS refund USING (refund_id)
    JOIN purchases AS purchase USING (order_id)
    GROUP BY purchase.currency
),
reconciled AS (
    SELECT currency, sum(amount_owed_to_customers) AS owed
    FROM daily_reconciliation
    GROUP BY currency
    HAVING sum(amount_owed_to_customers) <> 0
),
compared AS (
    SELECT currency,
           coalesce(shortfalls.owed, 0) AS expected_owed,
           coalesce(reconciled.owed, 0) AS actual_owed,
           coalesce(shortfalls.refunds, 0) AS refunds
    FROM shortfalls
    FULL OUTER JOIN reconciled USING (currency)
)
SELECT coalesce(bool_and(expected_owed = actual_owed), true) AS passed,
       coalesce(string_agg(currency || ' ' || expected_owed || ' (' || refunds || ' under-refunds)', ', '
                           ORDER BY currency), 'nothing owed') AS expected,
       coalesce(string_agg(currency || ' ' || actual_owed, ', ' ORDER BY currency), 'nothing owed') AS actual,
       coalesce(string_agg(currency || ': shortfalls ' || expected_owed || ', reconciliation owes ' || actual_owed,
                           '; ' ORDER BY currency) FILTER (WHERE expected_owed <> actual_owed),
                'the amount owed equals the under-refund shortfalls') AS detail
FROM compared;
