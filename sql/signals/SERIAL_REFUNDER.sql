/* @signal
code = "SERIAL_REFUNDER"
position = 1  # in the catalogue (SPEC table order)
origin = "spec"
weight = 0.5
summary = "many live refunds in a short time"
reads = ["refund_facts"]

[settings]  # [signals] keys of the config, with their defaults
serial_refunder_min_refunds = 3
serial_refunder_window_days = 90
*/
-- SPEC 5: "it has >= 3 live refunds requested in the 90 days ending on as_of".
-- Threshold and window: serial_refunder_min_refunds, serial_refunder_window_days.
SELECT entity_id,
       {'live_refunds': count(*),
        'threshold': getvariable('serial_refunder_min_refunds'),
        'window_days': getvariable('serial_refunder_window_days'),
        'refunds': list({'refund_id': refund_id, 'order_id': order_id, 'account_id': account_id,
                         'product': product, 'request_day': request_day, 'status': refund_status,
                         'refund_amount': refund_amount, 'currency': currency}
                        ORDER BY requested_at, refund_id)} AS evidence,
       list(refund_id ORDER BY requested_at, refund_id) AS refund_ids
FROM refund_facts
WHERE is_live
  AND in_days_ending_on_as_of(request_day, getvariable('serial_refunder_window_days'))
GROUP BY entity_id
HAVING count(*) >= getvariable('serial_refunder_min_refunds')
