/* @rule
code = "PAST_WINDOW"
position = 1  # in the catalogue (SPEC table order)
category = "policy"
severity = "high"
whole_refund_at_risk = true
summary = "requested after the refund window"
reads = ["refund_facts"]
params = ["refund_window_days"]
*/
-- Policy 1: "An unused package may be refunded unconditionally within 5 days (the 5th day
-- included) from the day of purchase."
-- Fires when billing_day(requested_at) - billing_day(purchased_at) > refund_window_days - 1.
SELECT refund_id,
       refund_amount AS amount_at_risk,
       {'purchased_at': purchased_at,
        'requested_at': requested_at,
        'purchase_day': purchase_day,
        'request_day': request_day,
        'day_of_request': days_after_purchase + 1,
        'refund_window_days': getvariable('refund_window_days')} AS evidence
FROM refund_facts
WHERE is_live
  AND days_after_purchase > getvariable('refund_window_days') - 1
