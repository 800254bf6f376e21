/* @signal
code = "PROMO_REFUNDS"
position = 3  # in the catalogue (SPEC table order)
origin = "spec"
weight = 0.4
summary = "refunds of several discounted or couponed orders"
reads = ["refund_facts"]

[settings]  # [signals] keys of the config, with their defaults
promo_refunds_min_orders = 2
promo_refunds_window_days = 180
*/
-- SPEC 5: ">= 2 distinct orders with discount_amount > 0 or coupon_amount > 0 have live
-- refunds requested in the 180 days ending on as_of".
-- Threshold and window: promo_refunds_min_orders, promo_refunds_window_days.
SELECT entity_id,
       {'promo_orders': count(DISTINCT order_id),
        'threshold': getvariable('promo_refunds_min_orders'),
        'window_days': getvariable('promo_refunds_window_days'),
        'refunds': list({'refund_id': refund_id, 'order_id': order_id, 'request_day': request_day,
                         'discount_amount': discount_amount, 'coupon_amount': coupon_amount,
                         'refund_amount': refund_amount, 'currency': currency}
                        ORDER BY requested_at, refund_id)} AS evidence,
       list(refund_id ORDER BY requested_at, refund_id) AS refund_ids
FROM refund_facts
WHERE is_live
  AND (discount_amount > 0 OR coupon_amount > 0)
  AND in_days_ending_on_as_of(request_day, getvariable('promo_refunds_window_days'))
GROUP BY entity_id
HAVING count(DISTINCT order_id) >= getvariable('promo_refunds_min_orders')
