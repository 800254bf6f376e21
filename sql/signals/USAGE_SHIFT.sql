/* @signal
code = "USAGE_SHIFT"
position = 7  # in the catalogue (SPEC table order)
origin = "extra"
weight = 0.5
summary = "package untouched while free or pay-as-you-go minutes were used, then refunded"
reads = ["purchases", "refund_facts", "usage"]

[settings]  # [signals] keys of the config, with their defaults
usage_shift_min_minutes = 500
usage_shift_window_days = 180
*/
-- Beyond the SPEC. Policy 2: "If the package's gifted audio/video call minutes have been
-- used at all ... it is not refundable" - dodged by letting TRTC bill the free or
-- pay-as-you-go minutes while the package's own stay untouched.
-- Fires for an entity with a live refund (requested in the usage_shift_window_days ending on
-- as_of) whose order has no package usage before the request while its SDKAppID used at
-- least usage_shift_min_minutes of free or pay-as-you-go minutes (usage with no order_id)
-- between the purchase and the request: the service was used, then the package refunded.
WITH shifted AS (
    SELECT refund.entity_id, refund.refund_id, refund.order_id, refund.purchased_at, refund.requested_at,
           purchase.sdkappid,
           sum(other.minutes) AS free_or_payg_minutes,
           count(*) AS usage_records
    FROM refund_facts AS refund
    JOIN purchases AS purchase USING (order_id)
    JOIN usage AS other
      ON other.sdkappid = purchase.sdkappid
     AND other.order_id IS NULL
     AND other.started_at >= refund.purchased_at
     AND other.started_at < refund.requested_at
    WHERE refund.is_live
      AND in_days_ending_on_as_of(refund.request_day, getvariable('usage_shift_window_days'))
      AND NOT EXISTS (
          SELECT 1 FROM usage AS own
          WHERE own.order_id = refund.order_id AND own.minutes > 0 AND own.started_at < refund.requested_at
      )
    GROUP BY ALL
    HAVING sum(other.minutes) >= getvariable('usage_shift_min_minutes')
)
SELECT entity_id,
       {'min_minutes': getvariable('usage_shift_min_minutes'),
        'refunds': list({'refund_id': refund_id, 'order_id': order_id, 'sdkappid': sdkappid,
                         'purchased_at': purchased_at, 'requested_at': requested_at,
                         'package_minutes_used': 0, 'free_or_payg_minutes': free_or_payg_minutes,
                         'usage_records': usage_records}
                        ORDER BY requested_at, refund_id)} AS evidence,
       list(refund_id ORDER BY requested_at, refund_id) AS refund_ids
FROM shifted
GROUP BY entity_id
