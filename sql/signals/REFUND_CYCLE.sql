/* @signal
code = "REFUND_CYCLE"
position = 2  # in the catalogue (SPEC table order)
origin = "spec"
weight = 0.6
summary = "refund, then buy the same product again within days, repeatedly"
reads = ["purchases", "refund_facts"]

[settings]  # [signals] keys of the config, with their defaults
refund_cycle_max_days_to_repurchase = 7
refund_cycle_min_cycles = 2
refund_cycle_window_days = 180
*/
-- SPEC 5: ">= 2 of its live refunds requested in the 180 days ending on as_of were each
-- followed by a purchase of the same product by the same entity, made after the refund's
-- requested_at and at most 7 billing days after the refund's billing day".
-- Threshold and windows: refund_cycle_min_cycles, refund_cycle_window_days,
-- refund_cycle_max_days_to_repurchase.
WITH cycles AS (
    SELECT refund.entity_id, refund.refund_id, refund.order_id, refund.product, refund.requested_at,
           refund.request_day,
           arg_min(purchase.order_id, (purchase.purchased_at, purchase.order_id)) AS repurchase_order_id,
           min(purchase.purchased_at) AS repurchased_at
    FROM refund_facts AS refund
    JOIN purchases AS purchase
      ON purchase.entity_id = refund.entity_id
     AND purchase.product = refund.product
     AND purchase.purchased_at > refund.requested_at
     AND date_diff('day', refund.request_day, billing_day(purchase.purchased_at))
         <= getvariable('refund_cycle_max_days_to_repurchase')
    WHERE refund.is_live
      AND in_days_ending_on_as_of(refund.request_day, getvariable('refund_cycle_window_days'))
    GROUP BY ALL
)
SELECT entity_id,
       {'cycles': count(*),
        'threshold': getvariable('refund_cycle_min_cycles'),
        'window_days': getvariable('refund_cycle_window_days'),
        'max_days_to_repurchase': getvariable('refund_cycle_max_days_to_repurchase'),
        'refunds': list({'refund_id': refund_id, 'order_id': order_id, 'product': product,
                         'requested_at': requested_at, 'repurchase_order_id': repurchase_order_id,
                         'repurchased_at': repurchased_at,
                         'days_to_repurchase': date_diff('day', request_day, billing_day(repurchased_at))}
                        ORDER BY requested_at, refund_id)} AS evidence,
       list(refund_id ORDER BY requested_at, refund_id) AS refund_ids
FROM cycles
GROUP BY entity_id
HAVING count(*) >= getvariable('refund_cycle_min_cycles')
