/* @step
creates = ["daily_reconciliation"]
reads = ["daily_reconciliation_by_rule", "purchases", "refund_facts", "refund_flags", "refund_verdicts", "rule_catalog"]
params = ["as_of", "run_id"]
template = ["at_risk_per_rule"]
*/
-- daily_reconciliation: the finance tie-out, one row per (billing_day, product, currency).
--   Purchases count on their purchase day, billing_day(purchased_at); refunds, with their
--   verdicts, flags and money, on their request day, billing_day(requested_at), under the
--   order's product and currency. A refund's status is the one the run sees (paid or
--   rejected after the end of as_of -> pending). A key with no purchases, or no refunds, has
--   zeros on that side. Money is summed exactly into DECIMAL(38,2), never as floating point: a
--   day of the largest amounts a DECIMAL(18,2) holds does not overflow.
--   at_risk_<rule code>: one column per rule of the catalogue (jobs/stages/reconciliation.py fills the
--     template from sql/rules/), the wide twin of daily_reconciliation_by_rule for spreadsheets.
--   amount_recoverable: what went out in breach of the rules and should come back: for each
--     paid or rejected refund with verdict breach, its refund_amount when a whole-refund code
--     fired, else the largest amount at risk of its flags, leaving out UNDER_REFUNDED.
--   amount_owed_to_customers: the UNDER_REFUNDED shortfalls (paid refunds that paid back
--     less than the refundable amount).
CREATE OR REPLACE TABLE daily_reconciliation AS
WITH purchase_days AS (
    SELECT billing_day(purchased_at) AS billing_day,
           product,
           currency,
           count(*) AS purchases_count,
           sum(list_price) AS purchases_list_price,
           sum(discount_amount) AS purchases_discount_amount,
           sum(coupon_amount) AS purchases_coupon_amount,
           sum(paid_cash_credit) AS purchases_paid_cash_credit,
           sum(paid_commission_credit) AS purchases_paid_commission_credit,
           sum(paid_free_credit) AS purchases_paid_free_credit,
           sum(paid_cash_credit + paid_commission_credit + paid_free_credit) AS purchases_paid_amount
    FROM purchases
    GROUP BY ALL
),
flag_money AS (
    SELECT flag.refund_id,
           count(*) AS flags,
           coalesce(bool_or(rule.whole_refund_at_risk) FILTER (WHERE flag.rule_code <> 'UNDER_REFUNDED'), false)
               AS whole_refund_recoverable,
           max(flag.amount_at_risk) FILTER (WHERE flag.rule_code <> 'UNDER_REFUNDED') AS largest_recoverable,
           sum(flag.amount_at_risk) FILTER (WHERE flag.rule_code = 'UNDER_REFUNDED') AS under_refunded
    FROM refund_flags AS flag
    LEFT JOIN rule_catalog AS rule USING (rule_code)
    GROUP BY flag.refund_id
),
refund_money AS (
    SELECT refund.request_day AS billing_day,
           refund.product,
           refund.currency,
           refund.refund_status,
           refund.refund_amount,
           verdict.verdict,
           coalesce(verdict.amount_at_risk, 0) AS amount_at_risk,
           money.*,
           CASE WHEN verdict.verdict = 'breach' AND refund.refund_status IN ('paid', 'rejected')
                THEN CASE WHEN money.whole_refund_recoverable THEN refund.refund_amount
                          ELSE coalesce(money.largest_recoverable, 0) END
                ELSE 0 END AS recoverable,
           coalesce(money.under_refunded, 0) AS owed
    FROM refund_facts AS refund
    LEFT JOIN refund_verdicts AS verdict USING (refund_id)
    LEFT JOIN flag_money AS money USING (refund_id)
),
refund_days AS (
    SELECT billing_day,
           product,
           currency,
           count(*) AS refunds_requested_count,
           sum(refund_amount) AS refunds_requested_amount,
           count(*) FILTER (WHERE refund_status = 'paid') AS refunds_paid_count,
           sum(refund_amount) FILTER (WHERE refund_status = 'paid') AS refunds_paid_amount,
           count(*) FILTER (WHERE refund_status = 'rejected') AS refunds_rejected_count,
           sum(refund_amount) FILTER (WHERE refund_status = 'rejected') AS refunds_rejected_amount,
           count(*) FILTER (WHERE refund_status = 'pending') AS refunds_pending_count,
           sum(refund_amount) FILTER (WHERE refund_status = 'pending') AS refunds_pending_amount,
           count(*) FILTER (WHERE refund_status = 'paid' AND verdict = 'compliant') AS refunds_paid_compliant_count,
           sum(refund_amount) FILTER (WHERE refund_status = 'paid' AND verdict = 'compliant')
               AS refunds_paid_compliant_amount,
           count(*) FILTER (WHERE refund_status = 'paid' AND verdict = 'breach') AS refunds_paid_in_breach_count,
           sum(refund_amount) FILTER (WHERE refund_status = 'paid' AND verdict = 'breach')
               AS refunds_paid_in_breach_amount,
           count(*) FILTER (WHERE verdict = 'compliant') AS verdict_compliant_count,
           count(*) FILTER (WHERE verdict = 'breach') AS verdict_breach_count,
           count(*) FILTER (WHERE verdict = 'stop') AS verdict_stop_count,
           count(*) FILTER (WHERE verdict = 'rejected') AS verdict_rejected_count,
           sum(amount_at_risk) FILTER (WHERE verdict = 'breach') AS at_risk_breach,
           sum(amount_at_risk) FILTER (WHERE verdict = 'stop') AS at_risk_stop,
           sum(amount_at_risk) AS at_risk_total,
           sum(flags) AS flags_count,
           sum(recoverable) AS amount_recoverable,
           sum(owed) AS amount_owed_to_customers
    FROM refund_money
    GROUP BY ALL
),
rule_days AS (
    SELECT billing_day, product, currency,
           {at_risk_per_rule}
    FROM daily_reconciliation_by_rule
    GROUP BY ALL
)
SELECT getvariable('run_id') AS run_id,
       getvariable('as_of') AS as_of,
       billing_day,
       product,
       currency,
       coalesce(purchases_count, 0) AS purchases_count,
       coalesce(purchases_list_price, 0)::DECIMAL(38,2) AS purchases_list_price,
       coalesce(purchases_discount_amount, 0)::DECIMAL(38,2) AS purchases_discount_amount,
       coalesce(purchases_coupon_amount, 0)::DECIMAL(38,2) AS purchases_coupon_amount,
       coalesce(purchases_paid_cash_credit, 0)::DECIMAL(38,2) AS purchases_paid_cash_credit,
       coalesce(purchases_paid_commission_credit, 0)::DECIMAL(38,2) AS purchases_paid_commission_credit,
       coalesce(purchases_paid_free_credit, 0)::DECIMAL(38,2) AS purchases_paid_free_credit,
       coalesce(purchases_paid_amount, 0)::DECIMAL(38,2) AS purchases_paid_amount,
       coalesce(refunds_requested_count, 0) AS refunds_requested_count,
       coalesce(refunds_requested_amount, 0)::DECIMAL(38,2) AS refunds_requested_amount,
       coalesce(refunds_paid_count, 0) AS refunds_paid_count,
       coalesce(refunds_paid_amount, 0)::DECIMAL(38,2) AS refunds_paid_amount,
       coalesce(refunds_rejected_count, 0) AS refunds_rejected_count,
       coalesce(refunds_rejected_amount, 0)::DECIMAL(38,2) AS refunds_rejected_amount,
       coalesce(refunds_pending_count, 0) AS refunds_pending_count,
       coalesce(refunds_pending_amount, 0)::DECIMAL(38,2) AS refunds_pending_amount,
       coalesce(refunds_paid_compliant_count, 0) AS refunds_paid_compliant_count,
       coalesce(refunds_paid_compliant_amount, 0)::DECIMAL(38,2) AS refunds_paid_compliant_amount,
       coalesce(refunds_paid_in_breach_count, 0) AS refunds_paid_in_breach_count,
       coalesce(refunds_paid_in_breach_amount, 0)::DECIMAL(38,2) AS refunds_paid_in_breach_amount,
       coalesce(verdict_compliant_count, 0) AS verdict_compliant_count,
       coalesce(verdict_breach_count, 0) AS verdict_breach_count,
       coalesce(verdict_stop_count, 0) AS verdict_stop_count,
       coalesce(verdict_rejected_count, 0) AS verdict_rejected_count,
       coalesce(at_risk_breach, 0)::DECIMAL(38,2) AS at_risk_breach,
       coalesce(at_risk_stop, 0)::DECIMAL(38,2) AS at_risk_stop,
       coalesce(at_risk_total, 0)::DECIMAL(38,2) AS at_risk_total,
       coalesce(flags_count, 0)::BIGINT AS flags_count,
       coalesce(COLUMNS('^rule_(at_risk_.*)$'), 0)::DECIMAL(38,2) AS '\1',
       coalesce(amount_recoverable, 0)::DECIMAL(38,2) AS amount_recoverable,
       coalesce(amount_owed_to_customers, 0)::DECIMAL(38,2) AS amount_owed_to_customers
FROM purchase_days
FULL OUTER JOIN refund_days USING (billing_day, product, currency)
LEFT JOIN rule_days USING (billing_day, product, currency)
ORDER BY billing_day, product, currency;
