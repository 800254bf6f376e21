/* @step
creates = ["refund_facts"]
reads = ["purchases", "refunds"]
params = ["as_of_end"]
*/
-- One row per refund visible to the run (SPEC 3 and 4): the status the run sees, the
-- cut-off its rules look up to, and the figures of its order the rules compare against.
--   refund_status: a refund processed after the end of as_of is still `pending` tonight.
--   cutoff_at:     processed_at for a paid refund, the end of as_of for a pending one.
--   refundable_amount: what was paid with cash, commission and free credits (SPEC 1.5),
--                  which the purchases row rule ties to list price less discount and coupon.
CREATE OR REPLACE TABLE refund_facts AS
WITH seen AS (
    SELECT *,
           CASE WHEN status <> 'pending' AND processed_at >= getvariable('as_of_end') THEN 'pending'
                ELSE status END AS refund_status
    FROM refunds
)
SELECT seen.refund_id,
       seen.order_id,
       purchase.account_id,
       purchase.entity_id,
       purchase.product,
       purchase.currency,
       seen.status AS exported_status,
       seen.refund_status,
       seen.refund_status IN ('pending', 'paid') AS is_live,
       seen.requested_at,
       CASE WHEN seen.refund_status <> 'pending' THEN seen.processed_at END AS processed_at,
       CASE seen.refund_status WHEN 'paid' THEN seen.processed_at
                               WHEN 'pending' THEN getvariable('as_of_end') END AS cutoff_at,
       seen.refund_cash_credit,
       seen.refund_commission_credit,
       seen.refund_free_credit,
       seen.refund_amount,
       purchase.purchased_at,
       purchase.list_price,
       purchase.discount_amount,
       purchase.coupon_amount,
       purchase.paid_cash_credit,
       purchase.paid_commission_credit,
       purchase.paid_free_credit,
       purchase.paid_cash_credit + purchase.paid_commission_credit + purchase.paid_free_credit
           AS refundable_amount,
       billing_day(purchase.purchased_at) AS purchase_day,
       billing_day(seen.requested_at) AS request_day,
       billing_days_between(purchase.purchased_at, seen.requested_at) AS days_after_purchase
FROM seen
JOIN purchases AS purchase USING (order_id);
