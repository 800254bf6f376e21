/* @rule
code = "COUPON_REFUNDED"
position = 5  # in the catalogue (SPEC table order)
category = "policy"
severity = "medium"
whole_refund_at_risk = false
summary = "discounts or coupons paid back"
reads = ["refund_facts"]
*/
-- Policy 5: "A qualifying refund is a full refund of what was paid with cash credits,
-- commission credits or free credits; discounts and cash coupons are never refunded."
-- Fires when refund_amount > refundable amount + 0.01; at risk: the excess.
SELECT refund_id,
       refund_amount - refundable_amount AS amount_at_risk,
       {'refund_amount': refund_amount,
        'refundable_amount': refundable_amount,
        'list_price': list_price,
        'discount_amount': discount_amount,
        'coupon_amount': coupon_amount,
        'excess': refund_amount - refundable_amount} AS evidence
FROM refund_facts
WHERE is_live
  AND exceeds_by_more_than_a_cent(refund_amount, refundable_amount)
